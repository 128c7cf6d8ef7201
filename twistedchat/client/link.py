"""The network side of a chat session: protocol lines in, :class:`~twistedchat.client.session.Session` calls.

:class:`SessionClient` is a :class:`~twistedchat.client.protocol.ChatClient` that reports what it hears to
a session model; :class:`SessionLink` keeps one session connected (first connection with clear
errors, then reconnection with backoff) and sends what the user types. Nothing here knows of Qt.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from OpenSSL import SSL
from twisted.application.internet import ClientService
from twisted.internet import defer, error, ssl
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IAddress,
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols import irc

from twistedchat.client.commands import is_channel_name
from twistedchat.client.protocol import ChatClient, ChatClientFactory, reconnecting_service
from twistedchat.client.session import Conversation, Event, Kind, QuitRequested, Session

log = Logger()

#: Numerics that answer a question the user asked (WHOIS, AWAY): shown where the user is looking.
ANSWERS = {"301", "305", "306", "311", "312", "313", "317", "318", "319", "330", "338", "378",
           "671", "341", "314", "369"}
#: Numerics the session shows in its own way, or that only carry machine-readable data.
QUIET = {"005", "332", "333", "353", "366", "329", "324", "004"}


def local_time(tags: dict[str, str]) -> datetime | None:
    """The ``server-time`` tag of a line as naive local time, or None."""
    stamp = tags.get("time")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().replace(
            tzinfo=None)
    except ValueError:
        return None


def numeric_text(params: list[str]) -> str:
    """A numeric reply's params (our nick dropped) as one readable line."""
    words = params[1:]
    if not words:
        return ""
    head, last = words[:-1], words[-1]
    return f"{' '.join(head)}: {last}" if head else last


class LinkError(Exception):
    """The first connection failed; ``str()`` says why in words, ``suggested_nick`` may help."""

    def __init__(self, message: str, suggested_nick: str | None = None) -> None:
        super().__init__(message)
        self.suggested_nick = suggested_nick


class SessionClient(ChatClient):
    """Feeds a :class:`Session` from the protocol; made by :class:`SessionLink`."""

    link: SessionLink

    @property
    def session(self) -> Session:
        return self.link.session

    # -- registration --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.link.client = self
        self.session.set_status(f"Connected to {self.link.address}, signing in…", False)
        super().connectionMade()

    def signedOn(self) -> None:
        self.link.factory.nickname = self.nickname
        self.session.on_registered(self.nickname)
        self.session.set_status(f"Connected to {self.link.address} as {self.nickname}", True)
        super().signedOn()
        self.link.registered(self)

    def isupport(self, options: list[str]) -> None:
        """ISUPPORT (005) came: the network's name and the member prefixes may be new."""
        self.session.on_server_info(self.supported.getFeature("NETWORK") or "",
                                    self.prefix_symbols())

    def irc_ERR_NICKNAMEINUSE(self, prefix: str, params: list[str]) -> None:
        if not self._registered and self.link.first_attempt:
            nick = params[1] if len(params) > 1 else self.nickname
            self.link.registration_failed(
                f"The nickname {nick} is already in use", suggested_nick=nick + "_")
            assert self.transport is not None, "a line arrived, so connected"
            self.transport.loseConnection()
            return
        super().irc_ERR_NICKNAMEINUSE(prefix, params)

    def irc_ERR_PASSWDMISMATCH(self, prefix: str, params: list[str]) -> None:
        if self.password:
            self.registrationFailed("The server refused the password")
        else:
            self.registrationFailed("This server needs a password")

    def registrationFailed(self, reason: str) -> None:
        self.link.registration_failed(reason)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        if self.link.client is self:
            self.link.client = None
        self.link.connection_lost(self, self.last_error or describe_loss(reason))

    # -- what we hear --------------------------------------------------------------------------

    def _time(self) -> datetime | None:
        return local_time(self.current_tags)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        self.session.on_message(user.split("!", 1)[0], channel, message, Kind.MESSAGE, self._time())

    def action(self, user: str, channel: str, data: str) -> None:
        self.session.on_message(user.split("!", 1)[0], channel, data, Kind.ACTION, self._time())

    def noticed(self, user: str, channel: str, message: str) -> None:
        self.session.on_message(user.split("!", 1)[0], channel, message, Kind.NOTICE, self._time())

    def irc_JOIN(self, prefix: str, params: list[str]) -> None:
        nick, channel = prefix.split("!", 1)[0], params[0]
        self.session.on_join(channel, nick)
        if self.session.is_me(nick):
            self.joined(channel)

    def irc_PART(self, prefix: str, params: list[str]) -> None:
        nick, channel = prefix.split("!", 1)[0], params[0]
        self.session.on_part(channel, nick, params[1] if len(params) > 1 else "")
        if self.session.is_me(nick):
            self.left(channel)

    def irc_KICK(self, prefix: str, params: list[str]) -> None:
        kicker, channel, kicked = prefix.split("!", 1)[0], params[0], params[1]
        reason = params[2] if len(params) > 2 else ""
        self.session.on_kick(channel, kicked, kicker, reason)
        if self.session.is_me(kicked):
            self.kickedFrom(channel, kicker, reason)

    def irc_QUIT(self, prefix: str, params: list[str]) -> None:
        self.session.on_quit(prefix.split("!", 1)[0], params[0] if params else "")

    def irc_NICK(self, prefix: str, params: list[str]) -> None:
        old, new = prefix.split("!", 1)[0], params[0]
        if self.session.is_me(old):
            self.nickname = new
            self.link.factory.nickname = new
        self.session.on_nick(old, new)

    def irc_TOPIC(self, prefix: str, params: list[str]) -> None:
        self.session.on_topic(params[0], params[1] if len(params) > 1 else "",
                              by=prefix.split("!", 1)[0])

    def irc_RPL_TOPIC(self, prefix: str, params: list[str]) -> None:
        if len(params) > 2:
            self.session.on_topic(params[1], params[2])

    def namesReceived(self, channel: str, members: list[tuple[str, str]]) -> None:
        self.session.on_names(channel, members)

    def irc_MODE(self, prefix: str, params: list[str]) -> None:
        by = prefix.split("!", 1)[0]
        target = params[0]
        self.session.on_mode(target, by, " ".join(params[1:]))
        if not is_channel_name(target) or len(params) < 2:
            return
        prefix_modes = self.supported.getFeature("PREFIX", {"o": ("@", 0), "v": ("+", 1)})
        chanmodes = self.supported.getFeature("CHANMODES", {})
        always = "".join(chanmodes.get(k, "") for k in ("addressModes", "param"))
        when_set = chanmodes.get("setParam", "")
        args = iter(params[2:])
        adding = True
        for char in params[1]:
            if char in "+-":
                adding = char == "+"
            elif char in prefix_modes:
                nick = next(args, None)
                if nick is not None:
                    self.session.on_member_mode(target, by, nick, prefix_modes[char][0], adding)
            elif char in always or (adding and char in when_set):
                next(args, None)

    def handleCommand(self, command: str, prefix: str, params: list[str]) -> None:
        numeric = irc.symbolic_to_numeric.get(command, command)
        if numeric.isdigit() and numeric not in QUIET:
            self._show_numeric(numeric, params)
        super().handleCommand(command, prefix, params)

    def _show_numeric(self, numeric: str, params: list[str]) -> None:
        text = numeric_text(params)
        if not text:
            return
        session = self.session
        if numeric[0] in "45":
            session.error(text)
        elif numeric == "301" and len(params) > 2:
            where = session.find(params[1]) or session.active
            session.info(f"{params[1]} is away: {params[2]}", where)
        elif numeric in ANSWERS:
            session.info(text, session.active)
        else:
            session.info(text)

    def irc_unknown(self, prefix: str, command: str, params: list[str]) -> None:
        """Commands this client has no handler for are logged, not shown."""
        log.debug("unhandled {command} {params}", command=command, params=params)


class SessionClientFactory(ChatClientFactory):
    protocol = SessionClient

    def __init__(self, link: SessionLink, nickname: str, channels: Iterable[str],
                 password: str | None, realname: str | None) -> None:
        super().__init__(nickname, channels, password, realname)
        self.link = link

    def buildProtocol(self, addr: IAddress | None) -> SessionClient:
        client = super().buildProtocol(addr)
        assert isinstance(client, SessionClient)
        client.link = self.link
        return client


def describe_loss(reason: Failure) -> str:
    """Why a connection ended, in words (TLS errors say what failed, not OpenSSL's tuples)."""
    if reason.check(SSL.Error):
        details = [
            part[-1]
            for part in (reason.value.args[0] if reason.value is not None and reason.value.args else [])
            if isinstance(part, tuple) and part
        ]
        what = "; ".join(str(d) for d in details) or "handshake failed"
        return f"TLS failed ({what})"
    return reason.getErrorMessage()


def describe_failure(failure: Failure, address: str) -> str:
    """A connection failure in words a person understands."""
    exc = failure.value
    if isinstance(exc, error.ConnectionRefusedError):
        return f"Could not connect to {address}: connection refused (is the server running?)"
    if isinstance(exc, error.DNSLookupError):
        return f"Could not find the server {address.rsplit(':', 1)[0]}"
    if isinstance(exc, error.TimeoutError):
        return f"Could not connect to {address}: no answer"
    return f"Could not connect to {address}: {failure.getErrorMessage()}"


class SessionLink:
    """Keeps one :class:`Session` connected to a server.

    :meth:`start` connects once and fires when we are signed on, or fails with a
    :class:`LinkError` (refused, nick in use, bad password). After that, a lost connection is
    shown in the session and retried with exponential backoff; channels are rejoined.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        session: Session,
        host: str,
        port: int,
        *,
        tls: bool = False,
        password: str | None = None,
        channels: Iterable[str] = (),
        realname: str | None = None,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        tls_options: IOpenSSLClientConnectionCreator | None = None,
    ) -> None:
        self.reactor = reactor
        self.session = session
        self.host, self.port, self.tls = host, port, tls
        self.address = f"{host}:{port}"
        self.factory = SessionClientFactory(self, session.nick, channels, password or None,
                                            realname)
        self.client: SessionClient | None = None
        self.first_attempt = True
        self.stopping = False
        self._initial_delay, self._max_delay = initial_delay, max_delay
        self._tls_options = tls_options
        self._first: defer.Deferred[None] | None = None
        self.service: ClientService | None = None
        session.subscribe(self._on_session_event)

    def endpoint(self) -> IStreamClientEndpoint:
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            self.reactor, self.host, self.port, timeout=15)
        if self.tls:
            options = self._tls_options or ssl.optionsForClientTLS(self.host)
            endpoint = wrapClientTLS(options, endpoint)
        return endpoint

    def start(self) -> defer.Deferred[None]:
        """Connect; fires once signed on, or fails with :class:`LinkError`."""
        self.first_attempt, self.stopping = True, False
        self._first = defer.Deferred()
        self.service = reconnecting_service(
            self.reactor, self.endpoint(), self.factory, initial_delay=self._initial_delay,
            max_delay=self._max_delay, on_retry=self._retrying)
        self.session.set_status(f"Connecting to {self.address}…", False)
        self.service.startService()
        self.service.whenConnected(failAfterFailures=1).addErrback(self._connect_failed)
        return self._first

    def _connect_failed(self, failure: Failure) -> None:
        if self.first_attempt:
            self._fail_first(describe_failure(failure, self.address))
        elif not failure.check(defer.CancelledError):
            self.session.set_status(describe_failure(failure, self.address), False)

    def _fail_first(self, message: str, suggested_nick: str | None = None) -> None:
        first, self._first = self._first, None
        self._stop_service()
        self.session.set_status(message, False)
        if first is not None:
            first.errback(LinkError(message, suggested_nick))

    def _stop_service(self) -> defer.Deferred[None]:
        self.stopping = True
        service, self.service = self.service, None
        if service is None or not service.running:
            return defer.succeed(None)
        return defer.maybeDeferred(service.stopService)

    def _retrying(self, delay: float) -> None:
        if not self.first_attempt and not self.stopping:
            self.session.set_status(
                f"Not connected to {self.address}: retrying in {delay:.0f} s", False)

    # -- called by the client ------------------------------------------------------------------

    def registered(self, client: SessionClient) -> None:
        self.first_attempt = False
        first, self._first = self._first, None
        if first is not None:
            first.callback(None)

    def registration_failed(self, reason: str, suggested_nick: str | None = None) -> None:
        if self.first_attempt:
            self._fail_first(reason, suggested_nick)
        else:  # retrying would fail the same way: stop, and say why
            self.session.error(reason)
            self._stop_service()
            self.session.set_status(f"Disconnected: {reason}", False)

    def connection_lost(self, client: SessionClient, reason: str) -> None:
        if self.first_attempt:
            if self._first is not None:
                self._fail_first(f"The server closed the connection: {reason}")
            return
        if client._registered:
            self.session.on_connection_lost(reason)
        if self.stopping:
            self.session.set_status("Disconnected", False)
        else:
            self.session.set_status(f"Connection to {self.address} lost: {reason}", False)

    # -- called by the view --------------------------------------------------------------------

    def send_input(self, text: str, conversation: Conversation | None = None) -> None:
        """Carry out what the user typed and send the protocol lines it makes."""
        lines = self.session.handle_input(text, conversation)
        if not lines:
            return
        if self.client is None:
            self.session.error("Not connected: nothing was sent", conversation)
            return
        for line in lines:
            self.client.sendLine(line)

    def _on_session_event(self, event: Event) -> None:
        if isinstance(event, QuitRequested):
            self.stop(event.reason)

    def stop(self, reason: str = "Leaving") -> defer.Deferred[None]:
        """Send QUIT with ``reason`` and disconnect for good; fires when the link is down.

        Only the first call sends QUIT (``/quit`` stops the link, then closing the window does).
        """
        if not self.stopping and self.client is not None and self.client._registered:
            self.client.quit(reason)
        self.stopping = True
        first, self._first = self._first, None
        if first is not None:
            first.errback(LinkError("Cancelled"))
        return self._stop_service()
