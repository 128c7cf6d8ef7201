"""The client side: Twisted's ``IRCClient`` with IRCv3 capability negotiation, and reconnection.

Bots (:mod:`twistedchat.bot`) and the desktop client (:mod:`qtclient`) subclass :class:`ChatClient`;
:func:`reconnecting_service` keeps one connected with exponential backoff.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import endpoints, interfaces, protocol
from twisted.logger import Logger
from twisted.words.protocols import irc

from twistedchat.wire.message import unescape_tag_value

log = Logger()

#: Capabilities this client understands; it asks for those the server offers.
SUPPORTED_CAPS = frozenset({"server-time", "message-tags", "multi-prefix", "away-notify"})

#: How many ``nick_`` variants to try when the nickname is taken before giving up.
MAX_NICK_ATTEMPTS = 3


def parse_tags(raw: str) -> dict[str, str]:
    """``key=value;flag`` (without the leading ``@``) -> a dict with unescaped values."""
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if item:
            key, _, value = item.partition("=")
            tags[key] = unescape_tag_value(value)
    return tags


def split_prefixes(name: str, symbols: str) -> tuple[str, str]:
    """``"@+alice"`` -> ``("@+", "alice")`` for the prefix symbols the server announced."""
    index = 0
    while index < len(name) and name[index] in symbols:
        index += 1
    return name[:index], name[index:]


class ChatClient(irc.IRCClient):
    """``IRCClient`` plus IRCv3: ``CAP LS 302`` negotiation, message tags, NAMES collection.

    While the callbacks for one line run, :attr:`current_tags` holds that line's tags (for
    example ``time`` from ``server-time``). Subclasses override the usual ``IRCClient`` callbacks
    and the three added here: :meth:`capsNegotiated`, :meth:`namesReceived` and
    :meth:`registrationFailed`.
    """

    nickname = "twistedchat"
    realname = "twistedchat client"  # type: ignore[assignment]  # IRCClient declares it None
    wanted_caps: frozenset[str] = SUPPORTED_CAPS

    def __init__(self) -> None:
        self.current_tags: dict[str, str] = {}
        self.enabled_caps: set[str] = set()
        self.channels_to_join: list[str] = []
        self.last_error: str | None = None
        self._offered_caps: list[str] = []
        self._negotiating = False
        self._names: dict[str, list[tuple[str, str]]] = {}
        self._nick_attempts = 0
        self._wanted_nick = ""

    # -- connection and registration -----------------------------------------------------------

    def connectionMade(self) -> None:
        self._negotiating = True
        self._wanted_nick = self.nickname
        self.sendLine("CAP LS 302")
        super().connectionMade()

    def lineReceived(self, line: bytes | str) -> None:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        tags: dict[str, str] = {}
        if line.startswith("@"):
            raw, _, line = line.partition(" ")
            tags = parse_tags(raw[1:])
        self.current_tags = tags
        try:
            super().lineReceived(line)
        finally:
            self.current_tags = {}

    def irc_CAP(self, prefix: str, params: list[str]) -> None:
        if len(params) < 3:
            return
        sub = params[1].upper()
        if sub == "LS":
            more = len(params) > 3 and params[2] == "*"
            self._offered_caps.extend(params[-1].split())
            if more or not self._negotiating:
                return
            offered = {cap.split("=", 1)[0] for cap in self._offered_caps}
            wanted = sorted(offered & self.wanted_caps)
            if wanted:
                self.sendLine("CAP REQ :" + " ".join(wanted))
            else:
                self._end_negotiation()
        elif sub == "ACK":
            for cap in params[-1].split():
                if cap.startswith("-"):
                    self.enabled_caps.discard(cap[1:])
                else:
                    self.enabled_caps.add(cap)
            self._end_negotiation()
        elif sub == "NAK":
            self._end_negotiation()
        elif sub == "NEW":
            wanted = sorted(set(params[-1].split()) & self.wanted_caps - self.enabled_caps)
            if wanted:
                self.sendLine("CAP REQ :" + " ".join(wanted))
        elif sub == "DEL":
            self.enabled_caps.difference_update(params[-1].split())

    def _end_negotiation(self) -> None:
        if self._negotiating:
            self._negotiating = False
            self.sendLine("CAP END")
            self.capsNegotiated(set(self.enabled_caps))

    def capsNegotiated(self, enabled: set[str]) -> None:
        """Called once capability negotiation is over, with the enabled capabilities."""

    def irc_ERR_NICKNAMEINUSE(self, prefix: str, params: list[str]) -> None:
        if self._registered:
            self.nickInUse(params[1] if len(params) > 1 else self._attemptedNick)
            return
        self._nick_attempts += 1
        if self._nick_attempts > MAX_NICK_ATTEMPTS:
            self.registrationFailed(f"Nickname {self._wanted_nick} is already in use")
            assert self.transport is not None, "a line arrived, so connected"
            self.transport.loseConnection()
            return
        super().irc_ERR_NICKNAMEINUSE(prefix, params)

    def nickInUse(self, nick: str) -> None:
        """After registration, a NICK change was refused because ``nick`` is taken."""

    def irc_ERR_ERRONEUSNICKNAME(self, prefix: str, params: list[str]) -> None:
        nick = params[1] if len(params) > 1 else self._attemptedNick
        if not self._registered:
            self.registrationFailed(f"The server refused the nickname {nick!r}")
            assert self.transport is not None, "a line arrived, so connected"
            self.transport.loseConnection()
        else:
            self.nickInUse(nick)

    def irc_ERR_PASSWDMISMATCH(self, prefix: str, params: list[str]) -> None:
        self.registrationFailed("The server password was wrong")

    def irc_ERR_YOUREBANNEDCREEP(self, prefix: str, params: list[str]) -> None:
        self.registrationFailed(params[-1] if params else "Banned from this server")

    def irc_ERROR(self, prefix: str, params: list[str]) -> None:
        self.last_error = params[-1] if params else "Closing link"

    def registrationFailed(self, reason: str) -> None:
        """Called when the server refuses us before the welcome (nick, password, ban)."""
        log.warn("registration failed: {reason}", reason=reason)

    def signedOn(self) -> None:
        self._nick_attempts = 0
        for channel in self.channels_to_join:
            self.join(channel)

    # -- channel bookkeeping -------------------------------------------------------------------

    def _factory_channels(self) -> list[str] | None:
        factory = getattr(self, "factory", None)
        return getattr(factory, "channels", None)

    def joined(self, channel: str) -> None:
        channels = self._factory_channels()
        if channels is not None and channel.lower() not in (c.lower() for c in channels):
            channels.append(channel)

    def left(self, channel: str) -> None:
        self._forget_channel(channel)

    def kickedFrom(self, channel: str, kicker: str, message: str) -> None:
        self._forget_channel(channel)

    def _forget_channel(self, channel: str) -> None:
        channels = self._factory_channels()
        if channels is not None:
            channels[:] = [c for c in channels if c.lower() != channel.lower()]

    def prefix_symbols(self) -> str:
        """The membership prefix symbols the server announced (``@+`` by default)."""
        prefixes = self.supported.getFeature("PREFIX", {"o": ("@", 0), "v": ("+", 1)})
        return "".join(symbol for symbol, _ in sorted(prefixes.values(), key=lambda p: p[1]))

    def irc_RPL_NAMREPLY(self, prefix: str, params: list[str]) -> None:
        if len(params) < 4:
            return
        channel = params[2]
        symbols = self.prefix_symbols()
        members = self._names.setdefault(channel.lower(), [])
        for name in params[3].split():
            marks, nick = split_prefixes(name, symbols)
            members.append((marks, nick.split("!", 1)[0]))

    def irc_RPL_ENDOFNAMES(self, prefix: str, params: list[str]) -> None:
        if len(params) < 2:
            return
        channel = params[1]
        members = self._names.pop(channel.lower(), [])
        self.namesReceived(channel, members)

    def namesReceived(self, channel: str, members: list[tuple[str, str]]) -> None:
        """Called with a channel's whole member list: (prefix symbols, nick) pairs."""


class ChatClientFactory(protocol.Factory):
    """Makes :class:`ChatClient` s that share one nickname, password and channel list.

    :attr:`channels` follows our joins, parts and kicks, so a reconnect rejoins where we were.
    """

    protocol: type[ChatClient] = ChatClient

    def __init__(
        self,
        nickname: str,
        channels: Iterable[str] = (),
        password: str | None = None,
        realname: str | None = None,
    ) -> None:
        self.nickname = nickname
        self.channels: list[str] = list(channels)
        self.password = password
        self.realname = realname

    def buildProtocol(self, addr: interfaces.IAddress | None) -> ChatClient:
        client = self.protocol()
        client.factory = self
        client.nickname = self.nickname
        client.password = self.password  # type: ignore[assignment]  # IRCClient declares it None
        if self.realname:
            client.realname = self.realname
        client.channels_to_join = list(self.channels)
        return client


def reconnecting_service(
    reactor: interfaces.IReactorTime,
    endpoint_description: str | interfaces.IStreamClientEndpoint,
    factory: protocol.Factory,
    *,
    max_delay: float = 60.0,
    initial_delay: float = 1.0,
    on_retry: Callable[[float], None] | None = None,
    service_class: type[ClientService] = ClientService,
) -> ClientService:
    """A ``ClientService`` that keeps ``factory`` connected, retrying with exponential backoff.

    ``endpoint_description`` is a Twisted client string such as ``tcp:localhost:1234`` or
    ``tls:chat.example.org:6697``, or an endpoint object. ``on_retry`` is told each delay
    before the next attempt (a status line can show it). ``service_class`` may name a
    ``ClientService`` subclass (the bot's own adds start and stop steps).
    """
    if isinstance(endpoint_description, str):
        endpoint = endpoints.clientFromString(reactor, endpoint_description)
    else:
        endpoint = endpoint_description
    backoff = backoffPolicy(
        initialDelay=initial_delay, maxDelay=max_delay, factor=2.0, jitter=random.random
    )

    def policy(attempt: int) -> float:
        delay = backoff(attempt)
        if on_retry is not None:
            on_retry(delay)
        return delay

    return service_class(endpoint, factory, retryPolicy=policy, clock=reactor)
