"""``twistd chat`` options and the service they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.application import service
from twisted.internet import endpoints
from twisted.python import usage

from twistedchat.server.config import ServerConfig
from twistedchat.wire.message import ascii_int
from twistedchat.wire.names import valid_nick

DEFAULT_PORT = "tcp:1234"


def port_description(value: str) -> str:
    """A bare number means ``tcp:NUMBER``; anything else is a Twisted endpoint description."""
    number = ascii_int(value)
    if number is not None:
        if not 0 <= number <= 65535:
            raise usage.UsageError(f"--port: {value} is not a TCP port number (0-65535)")
        return f"tcp:{number}"
    return value


#: An option's number type: ``int`` or ``float``.
NumberT = TypeVar("NumberT", int, float)


def _number(option: str, convert: Callable[[str], NumberT],
            minimum: float) -> Callable[[str], NumberT]:
    def parse(value: str) -> NumberT:
        try:
            number = convert(value)
        except ValueError:
            raise usage.UsageError(f"--{option}: {value!r} is not a number") from None
        if number < minimum:
            raise usage.UsageError(f"--{option}: must be at least {minimum}, not {value}")
        return number

    return parse


def parse_oper(value: str, option: str = "oper") -> tuple[str, str]:
    """``NAME:PASSWORD`` -> (name, password)."""
    name, sep, password = value.partition(":")
    if not sep or not name or not password or " " in name:
        raise usage.UsageError(f"--{option}: expected NAME:PASSWORD, got {value!r}")
    return name, password


class Options(usage.Options):
    """Command line of ``twistd chat``."""

    synopsis = "[--port DESCRIPTION ...] [options]"
    longdesc = (
        "Runs the twistedchat daemon, an IRC-compatible chat server. --port takes a port number "
        "or any Twisted endpoint description (tcp:6667:interface=127.0.0.1, "
        "ssl:6697:privateKey=key.pem:certKey=cert.pem, unix:/path/to/socket) and may be repeated."
    )
    optFlags = [
        ["no-flood-control", None, "Turn the per-client flood limit off (benchmarks)."],
        ["no-direct-write", None,
         "Write all output through Twisted's transport.write (no direct socket writes)."],
    ]
    optParameters = [
        ["name", None, "twistedchat.local", "Server name shown to clients."],
        ["network", None, "twistedchat", "Network name (ISUPPORT NETWORK)."],
        ["motd", None, None, "File with the message of the day."],
        ["password", None, None, "Server password that clients must send with PASS."],
        ["oper-file", None, None, "File of operator credentials, one NAME:PASSWORD a line."],
        ["max-clients", None, 0, "Most connections at once (0: no limit).",
         _number("max-clients", int, 0)],
        ["max-per-ip", None, 10, "Most connections from one address (0: no limit).",
         _number("max-per-ip", int, 0)],
        ["ping-interval", None, 120, "Seconds of silence before the server sends PING.",
         _number("ping-interval", float, 1)],
        ["ping-timeout", None, 60, "Seconds to wait for the answer to PING.",
         _number("ping-timeout", float, 1)],
        ["registration-timeout", None, 60, "Seconds a new connection has to register.",
         _number("registration-timeout", float, 1)],
        ["flood-burst", None, 20, "Lines a client may send at once before being slowed.",
         _number("flood-burst", int, 1)],
        ["flood-rate", None, 5, "Lines per second a client may send after its burst.",
         _number("flood-rate", float, 0.1)],
        ["flood-queue", None, 100, "Delayed lines after which a flooder is disconnected.",
         _number("flood-queue", int, 1)],
        ["sendq", None, 1024 * 1024, "Bytes of unsent output before a client is dropped.",
         _number("sendq", int, 1024)],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # usage.Options.__init__ is unannotated
        self["port"] = []
        self["oper"] = {}

    def opt_port(self, value: str) -> None:
        """Listen here: a port number or an endpoint description. Repeatable. [default: 1234]"""
        self["port"].append(port_description(value))

    opt_p = opt_port

    def opt_oper(self, value: str) -> None:
        """Operator credentials NAME:PASSWORD for OPER. Repeatable."""
        name, password = parse_oper(value)
        self["oper"][name] = password

    def postOptions(self) -> None:
        from twisted.internet import reactor

        if not self["port"]:
            self["port"] = [DEFAULT_PORT]
        for description in self["port"]:
            try:
                endpoints.serverFromString(reactor, description)
            except (ValueError, KeyError, TypeError, OSError) as error:
                raise usage.UsageError(f"--port: bad endpoint {description!r}: {error}") from None
            except Exception as error:  # e.g. an unreadable certificate for ssl:
                raise usage.UsageError(f"--port: cannot use {description!r}: {error}") from None
        if self["motd"] is not None:
            self["motd_lines"] = _read_lines("motd", self["motd"])
        if self["oper-file"] is not None:
            for line in _read_lines("oper-file", self["oper-file"]):
                if line.strip() and not line.lstrip().startswith("#"):
                    name, password = parse_oper(line.strip(), "oper-file")
                    self["oper"][name] = password
        if not self["name"] or " " in self["name"]:
            raise usage.UsageError("--name: a server name cannot be empty or contain spaces")
        if not valid_nick(self["network"].replace(".", "-")):
            raise usage.UsageError("--network: use letters, digits, '-' and '.' only")

    def config(self) -> ServerConfig:
        """The :class:`ServerConfig` these options describe."""
        return ServerConfig(
            name=self["name"],
            network=self["network"],
            motd=self.get("motd_lines"),
            password=self["password"],
            opers=dict(self["oper"]),
            max_clients=self["max-clients"],
            max_per_ip=self["max-per-ip"],
            ping_interval=self["ping-interval"],
            ping_timeout=self["ping-timeout"],
            registration_timeout=self["registration-timeout"],
            flood_burst=self["flood-burst"],
            flood_rate=0 if self["no-flood-control"] else self["flood-rate"],
            flood_queue=self["flood-queue"],
            sendq=self["sendq"],
            direct_write=not self["no-direct-write"],
        )


def _read_lines(option: str, path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise usage.UsageError(f"--{option}: cannot read {path}: {error}") from None


def makeService(options: Options) -> service.IService:
    """The daemon's service for ``twistd chat``."""
    from twistedchat.server.net import ChatService

    return ChatService(options.config(), list(options["port"]))
