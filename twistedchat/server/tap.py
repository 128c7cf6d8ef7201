"""``twistd chat`` options (built from the settings table in server/config.py) and the service."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.python import usage

from twistedchat.server.config import (
    SETTINGS,
    SETTINGS_BY_KEY,
    ConfigError,
    ServerConfig,
    Setting,
    check_endpoints,
    exposed_secrets,
    load_config,
    parse_oper,
    port_description,
)
from twistedchat.server.process import TwistdContext


def _help(setting: Setting) -> str:
    """A setting's help line, with its default from :class:`ServerConfig`."""
    default = setting.default
    if setting.is_flag or default is None:
        return str(setting.help)
    if isinstance(default, list):
        if not default:
            return str(setting.help)
        default = ", ".join(default)
    elif isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"{setting.help} [default: {default}]"


def _repeated(key: str) -> Callable[[usage.Options, str], None]:
    """The option method of a repeated setting: each value checked and appended."""
    setting = SETTINGS_BY_KEY[key]

    def option(self: usage.Options, value: str) -> None:
        try:
            self[key].append(setting.check(value))
        except ConfigError as error:
            raise usage.UsageError(f"--{key}: {error}") from None

    option.__doc__ = _help(setting)  # twistd's help shows a method's docstring
    return option


class Options(usage.Options):
    """Command line of ``twistd chat``: every setting of the table, ``--config`` and ``--configtest``."""

    synopsis = "[--config FILE] [--port DESCRIPTION ...] [options]"
    longdesc = (
        "Runs the twistedchat daemon, an IRC-compatible chat server. --port takes a port number "
        "or any Twisted endpoint description (tcp:6667:interface=127.0.0.1, "
        "ssl:6697:privateKey=key.pem:certKey=cert.pem, unix:/path/to/socket) and may be repeated. "
        "Every option can also be set in a TOML file given with --config (the same names); the "
        "command line overrides the file. SIGHUP reloads the file and the MOTD."
    )
    optFlags = [
        *[[s.key, None, s.help] for s in SETTINGS if s.is_flag],
        ["configtest", None, "Check the configuration, say whether it is usable, and exit (0 or 1)."],
    ]
    optParameters = [
        ["config", None, None, "TOML config file (see docs/operations.md)."],
        *[[s.key, None, None, _help(s)] for s in SETTINGS if not s.is_flag and not s.repeated],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # usage.Options.__init__ is unannotated
        for setting in SETTINGS:
            if setting.repeated:
                self[setting.key] = []
        self["oper"] = {}
        self.overrides: dict[str, Any] = {}
        self.chat_config = ServerConfig()

    def opt_port(self, value: str) -> None:
        try:
            self["port"].append(port_description(value))
        except ConfigError as error:
            raise usage.UsageError(f"--port: {error}") from None

    opt_port.__doc__ = _help(SETTINGS_BY_KEY["port"])  # twistd's help shows a method's docstring
    opt_p = opt_port

    # The other repeated settings: the web client and IRC over WebSocket (server/websocket.py).
    opt_web = _repeated("web")
    opt_websocket = _repeated("websocket")
    opt_websocket_origin = _repeated("websocket-origin")
    opt_trusted_proxy = _repeated("trusted-proxy")

    def opt_oper(self, value: str) -> None:
        """Operator credentials NAME:PASSWORD for OPER (repeatable; better: [[oper]] in --config)."""
        try:
            name, password = parse_oper(value)
        except ConfigError as error:
            raise usage.UsageError(f"--oper: {error}") from None
        self["oper"][name] = password

    def command_line_settings(self) -> dict[str, Any]:
        """What the command line set, checked, by :class:`ServerConfig` field name."""
        overrides: dict[str, Any] = {}
        for setting in SETTINGS:
            value = self[setting.key]
            if setting.repeated:
                if value:
                    overrides[setting.field_name] = list(value)
            elif setting.is_flag:
                if value:
                    overrides[setting.field_name] = setting.field_value(True)
            elif value is not None:
                try:
                    checked = setting.check(value)
                except ConfigError as error:
                    raise usage.UsageError(f"--{setting.key}: {error}") from None
                # absolute, so a reload after twistd's --rundir chdir reads the same file
                overrides[setting.field_name] = os.path.abspath(checked) if setting.is_path \
                    else checked
        if self["oper"]:
            overrides["opers"] = dict(self["oper"])
        return overrides

    def parseOptions(self, options: list[str] | None = None) -> None:
        #: The command line as given: ``--workers`` starts each worker with it.
        self.raw_arguments = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)  # type: ignore[no-untyped-call]

    def postOptions(self) -> None:
        self.overrides = self.command_line_settings()
        config_file = os.path.abspath(self["config"]) if self["config"] else None
        try:
            config = load_config(config_file, self.overrides)
            check_endpoints(config)
            if config.workers > 1:
                from twistedchat.cluster.service import check_workers

                check_workers(config)
        except ConfigError as error:
            if self["configtest"]:
                raise SystemExit(f"{config_file or 'command line'}: configuration refused: "
                                 f"{error}") from None
            if config_file is None:  # everything came from the command line
                raise usage.UsageError(f"--{error}") from None
            raise SystemExit(f"twistedchat: {error}") from None
        exposed = exposed_secrets(config)
        if exposed:
            print(f"warning: {exposed}", file=sys.stderr)
        if self["configtest"]:
            from twistedchat.storage.model import StoreError
            from twistedchat.storage.url import inspect_store

            try:
                database = inspect_store(config.db)
            except StoreError as error:
                raise SystemExit(f"{config_file or 'command line'}: configuration refused: the "
                                 f"database: {error}") from None
            print(f"{config_file or 'command line'}: configuration OK "
                  f"({len(config.ports)} listener(s), {len(config.opers) + len(config.oper_accounts)}"
                  f" operator(s); database {database})")
            raise SystemExit(0)
        self.chat_config = config
        if self.parent is not None:
            context = TwistdContext.from_options(self.parent)
            try:
                context.check_writable_paths()
                if config.log_format == "json":
                    context.use_json_log(self.parent)
            except ConfigError as error:
                raise SystemExit(f"twistd: {error}") from None

    def config(self) -> ServerConfig:
        """The :class:`ServerConfig` these options describe."""
        return self.chat_config


def makeService(options: Options) -> service.IService:
    """The daemon's service for ``twistd chat``."""
    from twistedchat.server.service import ChatService

    config = options.config()
    if config.workers > 1 or config.cluster is not None:
        from twistedchat.cluster import service as cluster

        if config.workers > 1:  # a supervisor of worker processes, each one a node
            return cluster.Supervisor(
                cluster.worker_arguments(options.raw_arguments, config.ports), config.workers)
    context = TwistdContext.from_options(options.parent) if options.parent is not None else None
    chat = ChatService(config, overrides=options.overrides, context=context, owns_process=True)
    if config.cluster is not None:
        node = cluster.ClusterService(chat.factory.core, config.cluster)
        node.setServiceParent(chat)  # type: ignore[no-untyped-call]
    return chat
