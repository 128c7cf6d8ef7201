"""The protocol side of a chat session: what the server says becomes :class:`~twistedchat.client.session.Session` calls.

:class:`SessionClient` is a :class:`~twistedchat.client.protocol.ChatClient` that reports what it
hears to a session model, paces what it sends and takes bursts in by chunks; the
:class:`~twistedchat.client.link.SessionLink` that makes it keeps the session connected.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

from OpenSSL import SSL
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols import irc

from twistedchat import __version__
from twistedchat.client.commands import is_channel_name
from twistedchat.client.extensions import EXTENSION_CAPS, ExtensionsClient
from twistedchat.client.pacing import RateLimiter
from twistedchat.client.protocol import SUPPORTED_CAPS, ChatClient, ChatClientFactory
from twistedchat.client.replies import Place, describe
from twistedchat.client.session import Kind, Session
from twistedchat.wire.flood import TokenBucket

if TYPE_CHECKING:
    from twistedchat.client.link import SessionLink

log = Logger()

#: What the user types is paced under the daemon's flood limit (20 at once, then 5 a second):
#: a 200-line paste arrives whole and in order instead of ending in "Excess Flood".
PACING_BURST = 10
PACING_RATE = 4.0
#: CTCP requests we answer, and how many answers at once / per second (a CTCP flood is no flood
#: of ours).
CTCP_ANSWERED = {"VERSION", "PING", "TIME", "CLIENTINFO"}
CTCP_BURST, CTCP_RATE = 3, 0.5
#: Bytes of incoming lines handled per event-loop turn: a burst of thousands of lines is taken in
#: over several turns, so the window keeps answering (the rest waits, in order).
READ_CHUNK = 8 * 1024
#: Unhandled bytes beyond which we stop reading the socket until we catch up.
READ_BACKLOG_LIMIT = 1024 * 1024
#: Errors meaning a message we sent to the named target was not delivered.
SEND_FAILURES = {"401", "404", "403", "406"}


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


class PausableTransport(Protocol):
    """A stream transport as a push producer: TCP and TLS transports both pause and resume."""

    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...


class SessionClient(ExtensionsClient, ChatClient):
    """Feeds a :class:`Session` from the protocol; made by :class:`SessionLink`."""

    link: SessionLink
    wanted_caps = SUPPORTED_CAPS | {"echo-message"} | EXTENSION_CAPS
    # IRCClient declares these three None (no CTCP VERSION answer); ours answer.
    versionName = "twistedchat"  # type: ignore[assignment]
    versionNum = __version__  # type: ignore[assignment]
    versionEnv = "PyQt6"  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.outgoing: RateLimiter | None = None
        self._ctcp_answers: TokenBucket | None = None
        #: channels we sent WHO for ourselves (to learn who is away): their replies stay quiet
        self._auto_who: set[str] = set()
        self._backlog = bytearray()
        self._draining: IDelayedCall | None = None
        self._paused = False
        self._init_extensions()

    @property
    def session(self) -> Session:
        return self.link.session

    # -- registration --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.link.client = self
        self.outgoing = RateLimiter(self.sendLine, self.link.reactor, *self.link.pacing)
        self._ctcp_answers = TokenBucket(CTCP_BURST, CTCP_RATE, self.link.reactor.seconds())
        self.session.set_status(f"Connected to {self.link.address}, signing in…", False)
        super().connectionMade()

    def capsNegotiated(self, enabled: set[str]) -> None:
        self.session.on_caps(enabled)

    def signedOn(self) -> None:
        self.link.factory.nickname = self.nickname
        self.session.on_registered(self.nickname)
        self.session.set_status(f"Connected to {self.link.address} as {self.nickname}", True)
        super().signedOn()
        self._start_extensions()
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

    def dataReceived(self, data: bytes) -> None:
        """Incoming bytes are handled :data:`READ_CHUNK` at a time, one chunk per turn."""
        self._backlog += data
        if len(self._backlog) > READ_BACKLOG_LIMIT and not self._paused and self.transport:
            self._paused = True
            cast(PausableTransport, self.transport).pauseProducing()
        if self._draining is None:
            self._drain()

    def _drain(self) -> None:
        self._draining = None
        chunk = bytes(self._backlog[:READ_CHUNK])
        del self._backlog[:READ_CHUNK]
        super().dataReceived(chunk)
        if self._backlog:
            self._draining = self.link.reactor.callLater(0, self._drain)
        elif self._paused and self.transport is not None:
            self._paused = False
            cast(PausableTransport, self.transport).resumeProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._draining is not None and self._draining.active():
            self._draining.cancel()
        self._draining = None
        if self._backlog:  # what arrived before the end is still shown, in order
            rest, self._backlog = bytes(self._backlog), bytearray()
            super().dataReceived(rest)
        if self.outgoing is not None:
            self.outgoing.stop()
        super().connectionLost(reason)
        if self.link.client is self:
            self.link.client = None
        self.link.connection_lost(self, self.last_error or describe_loss(reason))

    # -- what we hear --------------------------------------------------------------------------

    def _time(self) -> datetime | None:
        return local_time(self.current_tags)

    def _said(self, user: str, channel: str, text: str, kind: Kind) -> None:
        if not self._message_in(user, channel, text, kind):
            self.session.on_message(user.split("!", 1)[0], channel, text, kind, self._time(),
                                    user, self.current_tags.get("msgid", ""))

    def privmsg(self, user: str, channel: str, message: str) -> None:
        self._said(user, channel, message, Kind.MESSAGE)

    def action(self, user: str, channel: str, data: str) -> None:
        self._said(user, channel, data, Kind.ACTION)

    def noticed(self, user: str, channel: str, message: str) -> None:
        self._said(user, channel, message, Kind.NOTICE)

    def ctcpQuery(self, user: str, channel: str, messages: list[tuple[str, str | None]]) -> None:
        """CTCP requests: ACTION is a line; VERSION, PING, TIME, CLIENTINFO are answered (paced);
        every other request is shown, never acted on."""
        nick = user.split("!", 1)[0]
        for tag, data in messages:
            if tag == "ACTION":
                self.action(user, channel, data or "")
                continue
            if self.session.is_me(nick) or self.session.filters.ignored(user):
                continue  # our own request echoed back, or someone we ignore
            answer = tag in CTCP_ANSWERED and self._ctcp_answers is not None and \
                self._ctcp_answers.take(self.link.reactor.seconds()) == 0
            if answer:
                getattr(self, f"ctcpQuery_{tag}")(user, channel, data)
            self.session.on_ctcp(nick, channel, tag + (f" {data}" if data else ""), answer)

    def ctcpQuery_CLIENTINFO(self, user: str, channel: str, data: str | None) -> None:
        nick = user.split("!", 1)[0]
        self.ctcpMakeReply(nick, [("CLIENTINFO", " ".join(sorted(CTCP_ANSWERED | {"ACTION"})))])

    def ctcpReply(self, user: str, channel: str, messages: list[tuple[str, str | None]]) -> None:
        nick = user.split("!", 1)[0]
        if self.session.is_me(nick):
            return  # our own answer echoed back
        for tag, data in messages:
            self.session.on_ctcp_reply(nick, tag + (f" {data}" if data else ""))

    def irc_JOIN(self, prefix: str, params: list[str]) -> None:
        nick, channel = prefix.split("!", 1)[0], params[0]
        self.session.on_join(channel, nick)
        if self.session.is_me(nick):
            self.joined(channel)
            conversation = self.session.find(channel)
            if conversation is not None:
                self.request_history(conversation)
            if "away-notify" in self.enabled_caps and len(self._auto_who) < 50:
                self._auto_who.add(channel.lower())
                self.sendLine(f"WHO {channel}")  # who is away already; away-notify tells the rest

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
        own = self.session.is_me(old)
        if own:
            self.nickname = new
            self.link.factory.nickname = new
        self.session.on_nick(old, new)
        if own:
            self.session.set_status(f"Connected to {self.link.address} as {new}", True)

    def irc_AWAY(self, prefix: str, params: list[str]) -> None:
        """``away-notify``: a reason means away, none means back."""
        self.session.on_away(prefix.split("!", 1)[0], bool(params and params[-1]))

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
        if numeric.isdigit():
            self._show_numeric(numeric, params)
        super().handleCommand(command, prefix, params)

    def _show_numeric(self, numeric: str, params: list[str]) -> None:
        session = self.session
        if numeric in ("352", "315") and len(params) > 1 and params[1].lower() in self._auto_who:
            if numeric == "352" and len(params) > 6:
                session.on_away(params[5], "G" in params[6])
                if "B" in params[6]:
                    session.on_bot(params[5])
            elif numeric == "315":
                self._auto_who.discard(params[1].lower())
            return
        if self._extension_numeric(numeric, params):
            return
        if numeric in SEND_FAILURES and len(params) > 2:
            session.on_send_failed(params[1], params[-1])
        if numeric in ("321", "322", "323"):
            self._channel_list(numeric, params)
            return
        reply = describe(numeric, params)
        if reply is None:
            return
        if reply.place is Place.SERVER:
            where = session.server
        elif reply.place is Place.TARGET:
            where = session.find(reply.target) or session.active or session.server
        else:
            where = session.active or session.server
        session.info(reply.text, where, Kind.ERROR if reply.error else Kind.INFO)

    def _channel_list(self, numeric: str, params: list[str]) -> None:
        """LIST answers (321 start, 322 one channel, 323 end) go to the session's channel list."""
        if numeric == "322" and len(params) >= 3:
            users = int(params[2]) if params[2].isdigit() else 0
            self.session.on_channel_list([(params[1], users, params[3] if len(params) > 3 else "")],
                                         False)
        elif numeric == "323":
            self.session.on_channel_list([], True)

    def irc_unknown(self, prefix: str, command: str, params: list[str]) -> None:
        """Commands this client has no handler for are logged, not shown."""
        log.debug("unhandled {command} {params}", command=command, params=params)


class SessionClientFactory(ChatClientFactory):
    protocol = SessionClient

    def __init__(self, link: SessionLink, nickname: str, channels: Iterable[str],
                 password: str | None, realname: str | None) -> None:
        super().__init__(nickname, channels, password, realname)
        self.link = link
        #: an account to log in to with SASL (and to create first, once, with ``register_account``)
        self.sasl_account: str | None = None
        self.sasl_password: str | None = None
        self.register_account = False

    def buildProtocol(self, addr: IAddress | None) -> SessionClient:
        client = super().buildProtocol(addr)
        assert isinstance(client, SessionClient)
        client.link = self.link
        client.sasl_account, client.sasl_password = self.sasl_account, self.sasl_password
        client.register_account = self.register_account
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
