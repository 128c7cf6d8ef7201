"""The connection of a bot: paced fair output, commands with results, SASL and registration
(what it hears becomes channel state and events in :mod:`twistedchat.bot.events`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IReactorTime, ITransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.words.protocols import irc

from twistedchat.bot.events import CTCP_RATE as CTCP_RATE  # re-exported: moved there
from twistedchat.bot.events import MAX_NAME_SOURCES as MAX_NAME_SOURCES
from twistedchat.bot.events import WHOX_TOKEN as WHOX_TOKEN
from twistedchat.bot.events import BotEvents
from twistedchat.bot.output import FairQueues, PendingCommands, ServerError
from twistedchat.client.pacing import RateLimiter
from twistedchat.client.protocol import (
    SUPPORTED_CAPS,
    ChatClient,
    ChatClientFactory,
)
from twistedchat.wire.fitting import fit_utf8, source_estimate, split_text, text_room

if TYPE_CHECKING:
    from twistedchat.bot.core import Bot

#: What a bot asks the server for beside what every client asks: accounts and full user prefixes.
#: Never ``echo-message``: a bot must not hear itself (an echo bot would answer itself forever).
BOT_CAPS = (SUPPORTED_CAPS - {"echo-message"}) | {
    "account-tag", "extended-join", "account-notify", "userhost-in-names"}
#: Error numerics that are part of normal life (handled elsewhere), not reported to the bot.
QUIET_ERRORS = frozenset({"422", "432", "433", "437", "451"})
#: SASL replies: logged in, success, and the failures.
RPL_LOGGEDIN, RPL_SASLSUCCESS = "900", "903"
SASL_FAILURES = frozenset({"902", "904", "905", "906", "907"})
#: SASL payloads are sent in pieces of this many base64 characters.
SASL_CHUNK = 400

_NEXT = object()  # a message line's place in the pacer; the fair queues decide which line it is


class BotClient(BotEvents):
    """The connection of a :class:`~twistedchat.bot.Bot`: paced fair output, nick reclaiming,
    channel state, SASL, and events to the bot. ``Bot.client_class`` may name a subclass.
    """

    factory: BotFactory
    #: The server pings us; no need for IRCClient's own keep-alive timer.
    heartbeatInterval = None  # type: ignore[assignment]  # IRCClient declares an int; None is off

    def connectionMade(self) -> None:
        bot = self.factory.bot
        self.wanted_caps = BOT_CAPS | ({"sasl"} if self.factory.sasl_password else set())
        self._limiter = RateLimiter(self._emit, self.factory.clock, bot.burst, bot.rate)
        self._server_pace: RateLimiter | None = None
        self.queues = FairQueues(bot.queue_limit)
        self.pending = PendingCommands(bot.state.fold)
        self._reclaim: task.LoopingCall | None = None
        self._source: str | None = None
        self._prefix = ""
        self._sasl_started = False
        self._sasl_done = False
        self._name_sources: list[str] = []
        bot.client = self
        bot.joined_channels.clear()
        bot.state.reset()
        bot.state.own_nick = self.nickname
        bot.logger.info("connected to {peer}", peer=_peer(self.transport))
        super().connectionMade()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        bot = self.factory.bot
        self._limiter.stop()
        if self._server_pace is not None:
            self._server_pace.stop()
        for line in self.queues.drain():  # unsent messages wait for the next connection
            command_name, target, text = line.split(" ", 2)
            bot.keep_for_later(command_name, target, text[1:])
        self._stop_reclaiming()
        self.pending.fail_all(ConnectionError("the connection was lost"))
        if bot.client is self:
            bot.client = None
            bot.joined_channels.clear()
            bot.state.reset()
            bot.logger.info("disconnected: {reason}", reason=reason.getErrorMessage()
                         if isinstance(reason, Failure) else reason)
            bot.connection_lost()
        super().connectionLost(reason)

    # -- output ----------------------------------------------------------------------------------

    def sendLine(self, line: str | bytes) -> None:
        text = line if isinstance(line, str) else line.decode("utf-8", "replace")
        self._limiter(line, urgent=text.startswith("PONG "))

    def send_now(self, line: str) -> None:
        """Write ``line`` at once, past the pacer (the QUIT on shutdown)."""
        ChatClient.sendLine(self, line)

    def _emit(self, line: Any) -> None:
        if line is _NEXT:
            line = self.queues.pop()
            if line is None:
                return
        if self._server_pace is not None:
            text = line if isinstance(line, str) else line.decode("utf-8", "replace")
            self._server_pace(line, urgent=text.startswith("PONG "))
        else:
            ChatClient.sendLine(self, line)

    def learn_flood_limit(self, burst: int, rate: float) -> None:
        """Keep under a flood limit the server announced, on top of the bot's own pace."""
        if burst >= 1 and rate > 0 and self._server_pace is None:
            self._server_pace = RateLimiter(lambda line: ChatClient.sendLine(self, line),
                                            self.factory.clock, burst, rate)
            self.factory.bot.logger.info("server flood limit: {burst} lines, then {rate}/s",
                                      burst=burst, rate=rate)

    @property
    def waiting(self) -> int:
        """Lines waiting to be sent."""
        return self._limiter.waiting + (self._server_pace.waiting if self._server_pace else 0)

    def send_message(self, command_name: str, target: str, text: str, *,
                     max_lines: int | None = None, priority: int = 0) -> int:
        """Queue ``text`` for ``target`` in lines that fit; returns how many lines were queued."""
        if not valid_word(target):
            self.factory.bot.logger.warn("refused to send to {target!r}: not a nick or channel",
                                         target=target)
            return 0
        lines = split_text(text, text_room(self.own_source(), command_name, target))
        if max_lines is not None and len(lines) > max_lines:
            lines = lines[: max(0, max_lines)]
            if lines:
                lines[-1] = _ellipsis(lines[-1], text_room(self.own_source(), command_name, target))
        key = self.factory.bot.state.fold(target)
        queued = 0
        for line in lines:
            if not self.queues.put(key, f"{command_name} {target} :{line}", priority):
                self.factory.bot.logger.warn(
                    "output queue for {target} is full; dropped {count} lines",
                    target=target, count=len(lines) - queued)
                break
            self._limiter(_NEXT)
            queued += 1
        return queued

    def command(self, line: str, subjects: Iterable[str], codes: Iterable[str]) -> defer.Deferred[None]:
        """Send ``line``; the Deferred fires when the server accepted it or fails with its error."""
        subjects = list(subjects)
        if not all(valid_word(subject) for subject in subjects):
            return defer.fail(ValueError(f"not a nick, channel or mode: {subjects!r}"))
        try:
            pending = self.pending.add(subjects, codes)
        except ServerError as error:
            return defer.fail(error)
        self.sendLine(line)
        self.sendLine(f"PING :{pending.token}")
        return pending.result

    def own_source(self) -> str:
        """Our ``nick!user@host`` as others see it (a worst-case guess until the server shows it)."""
        if self._source is not None:
            return self._source
        return source_estimate(self.nickname, self.username or self.nickname)

    # -- what comes in -----------------------------------------------------------------------------

    def handleCommand(self, command: str, prefix: str, params: list[str]) -> None:
        self._prefix = prefix or ""
        code = irc.symbolic_to_numeric.get(command, command)
        if code == "354":
            self._whox_reply(params)
        elif code in (RPL_LOGGEDIN, RPL_SASLSUCCESS) or code in SASL_FAILURES:
            self._sasl_result(code, params)
        elif code.isdigit() and 400 <= int(code) < 600 and code not in QUIET_ERRORS:
            if not self.pending.error(code, params):
                self.factory.bot.server_error(code, params)
        if "!" in self._prefix:
            account = self.current_tags.get("account")
            self.factory.bot.state.seen(self._prefix, account)
        super().handleCommand(command, prefix, params)

    def irc_PONG(self, prefix: str, params: list[str]) -> None:
        if params:
            self.pending.pong(params[-1])

    # -- capabilities and SASL -------------------------------------------------------------------

    def _end_negotiation(self) -> None:
        """Capabilities are settled: log in with SASL first if it was granted and is wanted."""
        if (self._negotiating and self.factory.sasl_password and "sasl" in self.enabled_caps
                and not self._sasl_done):
            if not self._sasl_started:
                self._sasl_started = True
                self.sendLine("AUTHENTICATE PLAIN")
            return  # registration ends once the server answers (903, or a failure)
        super()._end_negotiation()

    def irc_AUTHENTICATE(self, prefix: str, params: list[str]) -> None:
        if not self._sasl_started or params[:1] != ["+"]:
            return
        account = self.factory.sasl_account or self.factory.nickname
        payload = f"{account}\0{account}\0{self.factory.sasl_password}".encode()
        encoded = base64.b64encode(payload).decode("ascii")
        for start in range(0, len(encoded), SASL_CHUNK):
            self.sendLine(f"AUTHENTICATE {encoded[start:start + SASL_CHUNK]}")
        if len(encoded) % SASL_CHUNK == 0:
            self.sendLine("AUTHENTICATE +")

    def _sasl_result(self, code: str, params: list[str]) -> None:
        bot = self.factory.bot
        if code == RPL_LOGGEDIN and len(params) > 2:
            bot.account = params[2]
            bot.logger.info("logged in as {account}", account=params[2])
            return
        if code in SASL_FAILURES:
            bot.logger.error("SASL login failed: {code} {text}", code=code,
                          text=params[-1] if params else "")
        if self._sasl_started and not self._sasl_done:
            self._sasl_done = True
            self._end_negotiation()

    # -- registration and the wanted nickname ----------------------------------------------------

    def irc_RPL_WELCOME(self, prefix: str, params: list[str]) -> None:
        if params and params[0] not in ("", "*"):
            self._attemptedNick = params[0]  # the nick the server gave us is the one we have
        super().irc_RPL_WELCOME(prefix, params)

    def signedOn(self) -> None:
        bot = self.factory.bot
        bot.state.own_nick = self.nickname
        bot.logger.info("signed on as {nick}", nick=self.nickname)
        super().signedOn()
        if self.nickname != self.factory.nickname:
            self._reclaim = task.LoopingCall(self._try_wanted_nick)
            self._reclaim.clock = self.factory.clock
            self._reclaim.start(bot.nick_retry, now=False)
        bot.signed_on()
        bot.flush_offline()

    def isupport(self, options: list[str]) -> None:
        super().isupport(options)
        state = self.factory.bot.state
        for option in options:
            name, _, value = option.partition("=")
            if name == "CASEMAPPING" and value:
                state.set_casemapping(value)
            elif name == "PREFIX" and value.startswith("(") and ")" in value:
                modes, symbols = value[1:].split(")", 1)
                state.set_prefix(zip(modes, symbols, strict=False))
            elif name == "CHANMODES":
                state.set_chanmodes(value.split(","))
            elif name == "BOT" and value and self.factory.bot.bot_mode:
                self.sendLine(f"MODE {self.nickname} +{value[0]}")
            elif name == self.factory.bot.flood_token and value:
                burst, _, rate = value.partition(":")
                try:
                    self.learn_flood_limit(int(burst), float(rate))
                except ValueError:
                    pass



def valid_word(word: str) -> bool:
    """True for a command parameter that cannot break the line: no space, CR, LF or NUL."""
    return bool(word) and word[0] != ":" and not any(c in word for c in " \r\n\0")


def one_line(text: str) -> str:
    """``text`` with line breaks and NUL turned into spaces (a reason, a topic)."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\0", " ")


def _ellipsis(line: str, room: int) -> str:
    """``line`` with `` …`` at its end, cut to fit ``room`` bytes."""
    mark = " …"
    return fit_utf8(line, room - len(mark.encode("utf-8"))).rstrip() + mark


def _peer(transport: ITransport | None) -> str:
    """The server's address as ``host:port`` for the log, or "the server" if it has none."""
    peer = transport.getPeer() if transport is not None else None
    if isinstance(peer, (IPv4Address, IPv6Address)):
        return f"{peer.host}:{peer.port}"
    return "the server"


class BotFactory(ChatClientFactory):
    """Makes the connections of one :class:`~twistedchat.bot.Bot` (of its ``client_class``)."""

    protocol = BotClient
    noisy = False  # ClientService logs the connection attempts already

    def __init__(
        self,
        bot: Bot,
        *,
        nickname: str | None = None,
        channels: Iterable[str] | None = None,
        password: str | None = None,
        clock: IReactorTime | None = None,
        sasl_password: str | None = None,
        sasl_account: str | None = None,
    ) -> None:
        if nickname:
            bot.nickname = nickname
        if channels is not None:
            bot.channels = list(channels)
        super().__init__(bot.nickname, bot.channels, password, bot.realname)
        if clock is None:
            from twisted.internet import reactor
            clock = reactor
        self.bot = bot
        self.clock = clock
        self.protocol = bot.client_class
        self.sasl_password = sasl_password or bot.sasl_password
        self.sasl_account = sasl_account or bot.sasl_account
        bot.factory = self
