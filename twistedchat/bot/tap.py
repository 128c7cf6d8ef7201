"""``twistd chatbot`` options, the bot file loader, and the service they make.

The bot file is a Python file that defines the bot, as either

* a name ``bot`` bound to a :class:`~twistedchat.bot.Bot` subclass or instance, or
* exactly one :class:`~twistedchat.bot.Bot` subclass (defined in the file itself).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

from twisted.application import service
from twisted.internet import endpoints
from twisted.python import usage

from twistedchat.bot import Bot, make_service
from twistedchat.bot.config import ConfigError, channel_to_join, load_file, parse_assignment
from twistedchat.wire.names import valid_nick

DEFAULT_SERVER = "tcp:localhost:1234"


class BotFileError(ValueError):
    """The bot file cannot be used; the message says why."""


def load_bot(path: str | Path) -> Bot:
    """Run the Python file at ``path`` and return the bot it defines (see the module docstring)."""
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise BotFileError(f"{path}: not a Python file (expected a path ending in .py)")
    name = f"twistedchat_bot_file_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BotFileError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise BotFileError(f"{path}: {type(error).__name__}: {error}") from None
    found = getattr(module, "bot", None)
    if found is None:
        classes = [value for value in vars(module).values()
                   if isinstance(value, type) and issubclass(value, Bot)
                   and value.__module__ == name]
        if len(classes) != 1:
            raise BotFileError(
                f"{path}: define exactly one Bot subclass, or name the bot 'bot' "
                f"(found {len(classes)} Bot subclasses)")
        found = classes[0]
    if isinstance(found, type) and issubclass(found, Bot):
        found = found()
    if not isinstance(found, Bot):
        raise BotFileError(f"{path}: 'bot' must be a twistedchat.bot.Bot subclass or instance")
    return found


class Options(usage.Options):
    """Command line of ``twistd chatbot``."""

    synopsis = ("[--server ENDPOINT] [--nick NICK] [--channel CHANNEL ...] [--password PW] "
                "[--config FILE.toml] [--set KEY=VALUE ...] BOTFILE.py")
    longdesc = (
        "Runs a chat bot. BOTFILE.py defines a twistedchat.bot.Bot subclass (exactly one), or a "
        "name 'bot' bound to a Bot subclass or instance. The bot reconnects with backoff and "
        "rejoins its channels. Settings come from the bot's class, then --config, then --set, "
        "then --server/--nick/--channel/--password."
    )
    optParameters = [
        ["server", "s", None,
         f"Twisted client endpoint of the server (tcp:HOST:PORT, tls:HOST:PORT; default "
         f"{DEFAULT_SERVER})."],
        ["nick", None, None, "Nickname (default: the bot's own nickname attribute)."],
        ["password", None, None,
         "The bot's password: sent as the server password (PASS) and used to log in with SASL "
         "PLAIN (account: the sasl_account setting or the nickname) when the server offers it."],
        ["config", None, None, "A TOML file of settings (any of the bot's attributes, server, "
                               "password)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["channel"] = []
        self["set"] = []

    def opt_set(self, value: str) -> None:
        """KEY=VALUE: one setting (the value read as TOML when it is, else as text); repeatable."""
        try:
            self["set"].append(parse_assignment(value))
        except ConfigError as error:
            raise usage.UsageError(str(error)) from None

    def opt_channel(self, value: str) -> None:
        """A channel to join; repeatable (default: the bot's own channels attribute)."""
        if not channel_to_join(value):
            raise usage.UsageError(f"--channel: {value!r} is not a channel name like '#lobby'")
        self["channel"].append(value)

    opt_c = opt_channel

    def parseArgs(self, path: str | None = None) -> None:
        if path is None:
            raise usage.UsageError("give the Python file that defines the bot")
        try:
            self["bot"] = load_bot(path)
        except BotFileError as error:
            raise usage.UsageError(str(error)) from None
        self["path"] = path

    def postOptions(self) -> None:
        bot = self["bot"]
        settings: dict[str, object] = {}
        try:
            if self["config"]:
                settings.update(load_file(self["config"]))
            settings.update(dict(self["set"]))
            bot.configure(settings)
        except ConfigError as error:
            raise usage.UsageError(str(error)) from None
        for key in ("server", "password"):
            if key in settings and not isinstance(settings[key], str):
                raise usage.UsageError(f"{key}: expected text, not {settings[key]!r}")
            if self[key] is None and key in settings:
                self[key] = settings[key]
        self["server"] = self["server"] or DEFAULT_SERVER
        nick = self["nick"] or self["bot"].nickname
        if not valid_nick(nick):
            raise usage.UsageError(f"--nick: {nick!r} is not a valid nickname")
        try:
            # Parsing only: the endpoint keeps the reactor without using it here.
            endpoints.clientFromString(object(), self["server"])
        except Exception as error:
            raise usage.UsageError(f"--server: bad endpoint {self['server']!r}: {error}") from None


def makeService(options: Options) -> service.IService:
    """The bot's reconnecting client service for ``twistd chatbot``."""
    return make_service(
        options["bot"],
        options["server"],
        nickname=options["nick"],
        channels=options["channel"] or None,
        password=options["password"],
        sasl_password=options["password"],
    )
