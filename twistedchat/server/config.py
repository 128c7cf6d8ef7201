"""Building the daemon's config: defaults, then a TOML file, then the command line; checks and reload.

The settings themselves (:class:`ServerConfig` and the :data:`SETTINGS` table) live in
:mod:`twistedchat.server.settings`; they are re-exported here, the module callers import.
"""

from __future__ import annotations

import ipaddress
import ssl
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from twistedchat.server.classes import CLASS_LIMITS, ConnectionClass
from twistedchat.server.settings import (
    DEFAULT_PORT,
    LOG_FORMATS,
    OPER_PERMISSIONS,
    SETTINGS,
    SETTINGS_BY_KEY,
    TLS_ENGINES,
    ConfigError,
    OperAccount,
    ServerConfig,
    Setting,
    WebircGateway,
    normal_fingerprint,
    parse_oper,
    port_description,
)
from twistedchat.wire.names import valid_nick

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_PORT", "LOG_FORMATS", "OPER_PERMISSIONS", "SETTINGS", "SETTINGS_BY_KEY",
    "TLS_ENGINES", "ConfigError", "OperAccount", "ServerConfig", "Setting", "WebircGateway",
    "check_config", "check_endpoints", "exposed_secrets", "load_config", "normal_fingerprint",
    "parse_oper", "port_description", "read_config_file", "read_lines", "reload_into",
    "settings_of",
]


# -- building a ServerConfig from the file and the command line ---------------------------------


#: The most a MOTD or oper file may hold: every new user is sent the whole MOTD.
MAX_FILE_BYTES = 64 * 1024


def read_lines(what: str, path: str) -> list[str]:
    """A text file's lines, or a :class:`ConfigError` naming ``what`` and the path."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what}: {path} is over {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ConfigError(f"{what}: {path} is not UTF-8 ({error.reason} at byte "
                          f"{error.start})") from None


def read_config_file(path: str) -> dict[str, Any]:
    """The settings a TOML config file gives, checked, by field name (plus ``oper_accounts``)."""
    import os

    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8: {error}") from None
    base = os.path.dirname(os.path.abspath(path))
    values: dict[str, Any] = {}
    for key, value in document.items():
        if key == "oper":
            values["oper_accounts"] = _oper_accounts(path, value)
            continue
        if key == "class":
            values["classes"] = _connection_classes(path, value)
            continue
        if key == "webirc":
            values["webirc"] = _webirc_gateways(path, value)
            continue
        if key == "oper-class":
            values["oper_classes"] = _oper_classes(path, value)
            continue
        setting = SETTINGS_BY_KEY.get(key)
        if setting is None:
            known = ", ".join([*SETTINGS_BY_KEY, "[[oper]]", "[[oper-class]]", "[[webirc]]",
                               "[[class]]"])
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {known})")
        try:
            if setting.repeated:
                items = value if isinstance(value, list) else [value]
                if not items:
                    raise ConfigError("needs at least one value")
                checked: Any = [setting.check(item) for item in items]
            else:
                checked = setting.check(value)
        except ConfigError as error:
            raise ConfigError(f"{path}: {key}: {error}") from None
        if setting.is_path:
            checked = os.path.join(base, os.path.expanduser(checked))
        values[setting.field_name] = setting.field_value(checked)
    return values


def _oper_accounts(path: str, tables: Any) -> dict[str, OperAccount]:
    """``[[oper]]`` tables: ``name``, ``password`` (an argon2id hash) and ``hosts`` (masks)."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: write operators as [[oper]] tables")
    accounts: dict[str, OperAccount] = {}
    for number, table in enumerate(tables, 1):
        where = f"{path}: [[oper]] number {number}"
        unknown = set(table) - {"name", "password", "hosts", "fingerprints", "class"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                              "(known: name, password, hosts, fingerprints, class)")
        name = table.get("name")
        if not isinstance(name, str) or not name or " " in name:
            raise ConfigError(f"{where}: needs a name without spaces")
        secret = table.get("password")
        if not isinstance(secret, str) or not secret.startswith("$argon2id$"):
            raise ConfigError(f"{where} ({name}): password must be an argon2id hash "
                              "(make one with: twistedchat hashpw)")
        hosts = table.get("hosts", ["*@*"])
        if (not isinstance(hosts, list) or not hosts
                or not all(isinstance(h, str) and h and " " not in h for h in hosts)):
            raise ConfigError(f"{where} ({name}): hosts must be a list of user@host masks")
        fingerprints = table.get("fingerprints", [])
        if not isinstance(fingerprints, list) or not all(
                isinstance(f, str) and len(normal_fingerprint(f)) == 64
                and all(c in "0123456789abcdef" for c in normal_fingerprint(f))
                for f in fingerprints):
            raise ConfigError(f"{where} ({name}): fingerprints must be SHA-256 fingerprints "
                              "(64 hex digits, colons allowed)")
        oper_class = table.get("class", "")
        if not isinstance(oper_class, str):
            raise ConfigError(f"{where} ({name}): class must be the name of an [[oper-class]]")
        if name in accounts:
            raise ConfigError(f"{where}: operator {name!r} is defined twice")
        accounts[name] = OperAccount(name, secret, tuple(hosts),
                                     tuple(normal_fingerprint(f) for f in fingerprints),
                                     oper_class)
    return accounts


def _tables(path: str, tables: Any, label: str,
            known: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each ``[[label]]`` table with where it is (for messages), its keys checked."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: write these as [[{label}]] tables")
    for number, table in enumerate(tables, 1):
        where = f"{path}: [[{label}]] number {number}"
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(sorted(known))})")
        yield where, table


def _networks(where: str, hosts: Any) -> tuple[str, ...]:
    """A non-empty list of addresses or CIDR ranges, checked."""
    if not isinstance(hosts, list) or not hosts:
        raise ConfigError(f"{where}: hosts must list addresses or CIDR ranges")
    for host in hosts:
        try:
            ipaddress.ip_network(host, strict=False)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: {host!r} is not an address or CIDR range") from None
    return tuple(hosts)


def _connection_classes(path: str, tables: Any) -> tuple[ConnectionClass, ...]:
    """``[[class]]`` tables: ``name``, ``hosts`` (CIDR ranges), ``exempt`` and limits, each
    checked as the global setting of the same name is."""
    limit_keys = {name.replace("_", "-"): name for name in CLASS_LIMITS}
    classes = []
    names: set[str] = set()
    for where, table in _tables(path, tables, "class", {"name", "hosts", "exempt", *limit_keys}):
        name = table.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ConfigError(f"{where}: needs a name of its own")
        names.add(name)
        hosts = _networks(f"{where} ({name})", table.get("hosts"))
        limits: dict[str, Any] = {}
        for key, value in table.items():
            if key in limit_keys:
                try:
                    limits[limit_keys[key]] = SETTINGS_BY_KEY[key].check(value)
                except ConfigError as error:
                    raise ConfigError(f"{where} ({name}): {key}: {error}") from None
        exempt = table.get("exempt", False)
        if not isinstance(exempt, bool):
            raise ConfigError(f"{where} ({name}): exempt must be true or false")
        classes.append(ConnectionClass(name, hosts, exempt=exempt, **limits))
    return tuple(classes)


def _webirc_gateways(path: str, tables: Any) -> tuple[WebircGateway, ...]:
    """``[[webirc]]`` tables: ``name``, ``password`` and ``hosts`` (addresses or CIDR ranges)."""
    gateways = []
    for where, table in _tables(path, tables, "webirc", {"name", "password", "hosts"}):
        name, secret = table.get("name"), table.get("password")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: needs a name")
        if not isinstance(secret, str) or len(secret) < 12:
            raise ConfigError(f"{where} ({name}): password must be at least 12 characters")
        gateways.append(WebircGateway(name, secret, _networks(f"{where} ({name})",
                                                              table.get("hosts"))))
    return tuple(gateways)


def _oper_classes(path: str, tables: Any) -> dict[str, frozenset[str]]:
    """``[[oper-class]]`` tables: ``name`` and ``permissions`` (of OPER_PERMISSIONS)."""
    classes: dict[str, frozenset[str]] = {}
    for where, table in _tables(path, tables, "oper-class", {"name", "permissions"}):
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: needs a name")
        permissions = table.get("permissions", [])
        if not isinstance(permissions, list) or not all(
                p in OPER_PERMISSIONS for p in permissions):
            raise ConfigError(f"{where} ({name}): permissions must be a list of "
                              + ", ".join(OPER_PERMISSIONS))
        if name in classes:
            raise ConfigError(f"{where}: oper class {name!r} is defined twice")
        classes[name] = frozenset(permissions)
    return classes


def load_config(config_file: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """A checked :class:`ServerConfig`: defaults, then ``config_file``, then ``overrides``.

    ``overrides`` holds what the command line gave, by field name (``opers`` is merged with
    the file's). The MOTD and oper files the settings name are read here, so a reload that
    calls this again sees their new contents. Raises :class:`ConfigError` with the reason.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(read_config_file(config_file))
    opers: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        if key == "opers":
            opers.update(value)
        else:
            values[key] = value
    config = ServerConfig(**values, config_file=config_file)
    if config.motd_file is not None:
        config.motd = read_lines("motd", config.motd_file)
    if config.oper_file is not None:
        for line in read_lines("oper-file", config.oper_file):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    name, secret = parse_oper(line.strip())
                except ConfigError as error:
                    raise ConfigError(f"oper-file: {config.oper_file}: {error}") from None
                config.opers[name] = secret
    config.opers.update(opers)
    check_config(config)
    return config


def settings_of(config: ServerConfig) -> dict[str, Any]:
    """Every setting's value in ``config`` (and its plain-text opers), as :func:`load_config`
    takes them in ``overrides``: a config built in code reloads to itself plus fresh files."""
    values = {setting.field_name: getattr(config, setting.field_name) for setting in SETTINGS}
    values["opers"] = dict(config.opers)
    values["oper_accounts"] = dict(config.oper_accounts)
    values["oper_classes"] = dict(config.oper_classes)
    values["webirc"] = config.webirc
    values["classes"] = config.classes
    if config.motd_file is None and config.motd is not None:
        values["motd"] = list(config.motd)  # given as text, no file to read again
    return values


def exposed_secrets(config: ServerConfig) -> str | None:
    """A warning if the config file holds secrets (a password, operators) and every local user
    may read it; None otherwise."""
    import os
    import stat

    path = config.config_file
    if path is None or not (config.password or config.oper_accounts or config.cloak_secret
                            or config.webirc):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not mode & stat.S_IROTH:
        return None
    return (f"{path} holds secrets and every user can read it; "
            f"chmod 640 it (group: the daemon's user)")


def check_config(config: ServerConfig) -> None:
    """Checks across settings (names the IRC protocol can carry)."""
    if not config.name or " " in config.name:
        raise ConfigError("name: a server name cannot be empty or contain spaces")
    if not valid_nick(config.network.replace(".", "-")):
        raise ConfigError("network: use letters, digits, '-' and '.' only")
    if not config.ports:
        raise ConfigError("port: give at least one")
    for account in config.oper_accounts.values():
        if account.oper_class and account.oper_class not in config.oper_classes:
            raise ConfigError(f"[[oper]] {account.name}: no [[oper-class]] named "
                              f"{account.oper_class!r}")
    if config.bans_file is not None:
        from twistedchat.server.bans import BanError, FileBanStore

        try:
            FileBanStore(config.bans_file).load()
        except BanError as error:
            raise ConfigError(str(error)) from None


def reload_into(running: ServerConfig, fresh: ServerConfig) -> tuple[list[str], list[str]]:
    """Copy the reloadable settings of ``fresh`` into ``running`` (in place, so the core, the
    factory and every connection see them at once).

    Returns (the keys that changed, the keys that changed but need a restart to take effect).
    """
    changed: list[str] = []
    kept: list[str] = []
    for setting in SETTINGS:
        name = setting.field_name
        if getattr(running, name) == getattr(fresh, name):
            continue
        if setting.reloadable:
            setattr(running, name, getattr(fresh, name))
            changed.append(setting.key)
        else:
            kept.append(setting.key)
    for name, label in (("motd", "motd text"), ("opers", "opers"),
                        ("oper_accounts", "[[oper]]"), ("oper_classes", "[[oper-class]]"),
                        ("webirc", "[[webirc]]"), ("classes", "[[class]]")):
        if getattr(running, name) != getattr(fresh, name):
            setattr(running, name, getattr(fresh, name))
            changed.append(label)
    return changed, kept


def check_endpoints(config: ServerConfig) -> None:
    """Every listening description (``port``, ``metrics``) parses into a Twisted endpoint, and
    the TLS ones have a readable key that matches their certificate (no socket is opened)."""
    from twistedchat.server.tls import read_tls_settings

    named = [("port", description) for description in config.ports]
    named += [("web", description) for description in config.web]
    named += [("websocket", description) for description in config.websocket]
    if config.metrics is not None:
        named.append(("metrics", config.metrics))
    for key, description in named:
        try:
            read_tls_settings(description, config.tls_engine)
        except ssl.SSLError as error:  # the stdlib engine's key that does not match, and the like
            raise ConfigError(f"{key}: cannot use {description!r}: {error}") from None
        except (ValueError, KeyError, TypeError, OSError) as error:
            raise ConfigError(f"{key}: bad endpoint {description!r}: {error}") from None
        except Exception as error:  # e.g. an unreadable certificate, a key that does not match
            raise ConfigError(f"{key}: cannot use {description!r}: {error}") from None
