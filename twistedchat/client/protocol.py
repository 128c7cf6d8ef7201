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

from twistedchat.client.sasl import SaslError, SaslLogin, choose_mechanism
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
        #: log in to this account with SASL when the server offers it (``sasl_password`` too)
        self.sasl_account: str | None = None
        self.sasl_password: str | None = None
        #: create the account first (``draft/account-registration``, before connecting)
        self.register_account = False
        #: the account we are logged in to (900), if any
        self.account: str | None = None
        self._sasl: SaslLogin | None = None
        self._login_pending = False

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
            wanted = sorted(offered & (self.wanted_caps | self._login_caps()))
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
            if self._negotiating and not self._login_pending and self._start_login():
                return
            self._end_negotiation()
        elif sub == "NAK":  # a login still wanted is said to be impossible, never skipped
            if self._negotiating and not self._login_pending and self._start_login():
                return
            self._end_negotiation()
        elif sub == "NEW":
            wanted = sorted(set(params[-1].split()) & self.wanted_caps - self.enabled_caps)
            if wanted:
                self.sendLine("CAP REQ :" + " ".join(wanted))
        elif sub == "DEL":
            self.enabled_caps.difference_update(params[-1].split())

    # -- accounts: SASL and draft/account-registration ---------------------------------------------

    def offered_value(self, cap: str) -> str | None:
        """The value the server gave ``cap`` in ``CAP LS`` ("" without one), None if not offered."""
        for item in self._offered_caps:
            name, has_value, value = item.partition("=")
            if name == cap:
                return value if has_value else ""
        return None

    def _login_caps(self) -> set[str]:
        if not (self.sasl_account and self.sasl_password):
            return set()
        return {"sasl", "draft/account-registration"} if self.register_account else {"sasl"}

    def _start_login(self) -> bool:
        """Begin creating an account or logging in (True), or say why not and stop (True), or
        there is nothing to do (False)."""
        if not (self.sasl_account and self.sasl_password):
            return False
        self._login_pending = True
        if any(c in self.sasl_account + self.sasl_password for c in "\r\n\0") \
                or " " in self.sasl_account:
            self._login_failed("The account name or password has characters a login cannot use")
            return True
        if self.register_account:
            if "before-connect" not in (self.offered_value("draft/account-registration") or "") \
                    or "draft/account-registration" not in self.enabled_caps:
                self._login_failed("This server does not let clients create accounts")
                return True
            self.sendLine(f"REGISTER {self.sasl_account} * :{self.sasl_password}")
            return True
        mechanism = choose_mechanism(self.offered_value("sasl"))
        if "sasl" not in self.enabled_caps or mechanism is None:
            self._login_failed("This server does not offer account logins (SASL)")
            return True
        self._sasl = SaslLogin(self.sasl_account, self.sasl_password, mechanism)
        self.sendLine(self._sasl.start())
        return True

    def irc_AUTHENTICATE(self, prefix: str, params: list[str]) -> None:
        if self._sasl is None or not params:
            return
        try:
            for line in self._sasl.receive(params[0]):
                self.sendLine(line)
        except SaslError as error:
            self.sendLine("AUTHENTICATE *")
            self._login_failed(f"The login failed: {error}")

    def irc_RPL_LOGGEDIN(self, prefix: str, params: list[str]) -> None:
        if len(params) > 2:
            self.account = params[2]

    def irc_RPL_SASLSUCCESS(self, prefix: str, params: list[str]) -> None:
        if self._sasl is None and not self._login_pending:
            return  # not our login (a subclass may run its own)
        self._sasl = None
        self._login_pending = False
        self._end_negotiation()

    def _sasl_refused(self, prefix: str, params: list[str]) -> None:
        if self._sasl is not None or self._login_pending:
            self._sasl = None
            reason = params[-1] if params else "refused"
            self._login_failed(f"The server refused the account login: {reason}")

    # Twisted's table names none of the SASL numerics: they arrive by number
    irc_900 = irc_RPL_LOGGEDIN
    irc_903 = irc_RPL_SASLSUCCESS
    irc_902 = irc_904 = irc_905 = irc_906 = irc_907 = irc_908 = _sasl_refused

    def irc_REGISTER(self, prefix: str, params: list[str]) -> None:
        if params and params[0] == "SUCCESS" and self._login_pending:
            self.account = params[1] if len(params) > 1 else self.sasl_account
            self._login_pending = False
            self._end_negotiation()
        elif params and params[0] == "VERIFICATION_REQUIRED":
            self._login_failed("The account was created but must be verified first: "
                               + (params[-1] if len(params) > 2 else "see your e-mail"))

    def irc_FAIL(self, prefix: str, params: list[str]) -> None:
        if params and params[0] == "REGISTER" and self._login_pending:
            self._login_failed(f"The account was not created: {params[-1]}")
        else:
            self.standardReply("FAIL", params)

    def standardReply(self, kind: str, params: list[str]) -> None:
        """A FAIL/WARN/NOTE standard reply nothing else handled."""

    def _login_failed(self, reason: str) -> None:
        self._login_pending = False
        self.registrationFailed(reason)
        if self.transport is not None:
            self.transport.loseConnection()

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
        factory = getattr(self, "factory", None)
        if self.register_account and self.account and factory is not None:
            factory.register_account = False  # created once: later connections log in
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
