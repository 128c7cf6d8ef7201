"""Write a chat bot in a dozen lines.

Subclass :class:`Bot` and decorate its methods::

    class DiceBot(Bot):
        nickname = "dicebot"
        channels = ["#lobby"]

        @command("roll")
        def roll(self, event):
            return f"{event.nick} rolled {random.randint(1, 6)}"

A handler gets one :class:`Event` (who said what, where) and may return a string (sent with
:meth:`Event.reply`), ``None``, or a coroutine / Deferred giving either. Run the bot with
``twistd -n chatbot FILE.py`` (see :mod:`twistedchat.bot.tap`) or from Python with
:func:`make_service`.

Under the hood a :class:`BotClient` (a :class:`~twistedchat.client.protocol.ChatClient`) paces every line it
sends (:class:`~twistedchat.client.pacing.RateLimiter`), splits long replies at the protocol's line
limit, reclaims its nickname when it had to take another, and :func:`make_service` reconnects with
backoff and rejoins the channels.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.application.internet import ClientService
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.client.pacing import RateLimiter
from twistedchat.client.protocol import ChatClient, ChatClientFactory, reconnecting_service
from twistedchat.wire.fitting import source_estimate, split_text, text_room

log = Logger()

_HANDLERS_ATTRIBUTE = "_twistedchat_bot_handlers"


def _mark(kind: str, argument: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        marks = list(getattr(function, _HANDLERS_ATTRIBUTE, []))
        marks.append((kind, argument))
        setattr(function, _HANDLERS_ATTRIBUTE, marks)
        return function

    return decorate


def command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle ``!name args`` (the bot's :attr:`Bot.prefix`) in a channel, or ``name args`` in private.

    ``event.command`` is the name and ``event.args`` the rest of the line.
    """
    if not name or " " in name:
        raise ValueError(f"a command name is one word, not {name!r}")
    return _mark("command", name.lower())


def on_message(pattern: str | re.Pattern[str] | None = None) -> Callable[..., Any]:
    """Handle every message (channel or private) whose text matches ``pattern`` (``re.search``).

    Without a pattern, every message. ``event.match`` is the match object. Actions (``/me``)
    count as messages with ``event.action`` true.
    """
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    return _mark("message", compiled)


def on_join(function: Callable[..., Any]) -> Callable[..., Any]:
    """Handle someone else joining one of the bot's channels (``event.nick``, ``event.channel``)."""
    return _mark("join", None)(function)


@dataclass
class Event:
    """Something that happened: who (``nick``, full ``user`` prefix), where, and what."""

    bot: Bot
    nick: str
    user: str
    #: The channel, or None for a private message.
    channel: str | None
    text: str = ""
    command: str | None = None
    args: str = ""
    match: re.Match[str] | None = None
    action: bool = False
    #: IRCv3 message tags of the line (e.g. ``time`` with ``server-time``).
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def private(self) -> bool:
        return self.channel is None

    @property
    def reply_target(self) -> str:
        """Where a reply goes: the channel, or the sender of a private message."""
        return self.channel or self.nick

    def reply(self, text: str) -> None:
        """Answer in the same channel, or privately to a private message."""
        self.bot.say(self.reply_target, text)


class Bot:
    """A bot: its settings as class attributes, its behaviour as decorated methods.

    One Bot lives across reconnections; :attr:`client` is the current connection (or None).
    """

    #: Wanted nickname (``--nick`` overrides it).
    nickname: str = "chatbot"
    #: Channels to join (``--channel`` overrides them).
    channels: Iterable[str] = ("#lobby",)
    realname: str = "twistedchat bot"
    #: What starts a command in a channel.
    prefix: str = "!"
    #: Outgoing pace: lines at once, then lines per second (below the server's flood limit).
    burst: int = 10
    rate: float = 2.0
    #: Seconds between attempts to take back :attr:`nickname` while someone else holds it.
    nick_retry: float = 30.0

    def __init__(self) -> None:
        self.client: BotClient | None = None
        self.joined_channels: set[str] = set()
        self._commands: dict[str, Callable[[Event], Any]] = {}
        self._message_handlers: list[tuple[re.Pattern[str] | None, Callable[[Event], Any]]] = []
        self._join_handlers: list[Callable[[Event], Any]] = []
        names = dict.fromkeys(name for cls in reversed(type(self).__mro__) for name in vars(cls))
        for name in names:  # in definition order, base classes first
            marks = getattr(inspect.getattr_static(self, name), _HANDLERS_ATTRIBUTE, ())
            method = getattr(self, name) if marks else None
            for kind, argument in marks:
                if kind == "command":
                    self._commands[argument] = method
                elif kind == "message":
                    self._message_handlers.append((argument, method))
                elif kind == "join":
                    self._join_handlers.append(method)

    # -- what a bot does ---------------------------------------------------------------------

    def say(self, target: str, text: str) -> None:
        """Send ``text`` to a channel or nick, split into as many lines as it needs."""
        self._send("PRIVMSG", target, text)

    def notice(self, target: str, text: str) -> None:
        """Like :meth:`say`, as a NOTICE (which bots should use to talk to other bots)."""
        self._send("NOTICE", target, text)

    def join(self, channel: str) -> None:
        if self.client is not None:
            self.client.join(channel)

    def part(self, channel: str, reason: str | None = None) -> None:
        if self.client is not None:
            self.client.leave(channel, reason)

    def _send(self, command_name: str, target: str, text: str) -> None:
        client = self.client
        if client is None:
            log.warn("not connected; dropped {command} to {target}", command=command_name,
                     target=target)
            return
        for line in split_text(text, text_room(client.own_source(), command_name, target)):
            client.sendLine(f"{command_name} {target} :{line}")

    # -- hooks a subclass may override ---------------------------------------------------------

    def signed_on(self) -> None:
        """Connected and registered; the JOINs for :attr:`channels` have just been sent."""

    def connection_lost(self) -> None:
        """The connection is gone; the service reconnects by itself."""

    # -- dispatch (called by BotClient) ----------------------------------------------------------

    def dispatch_message(self, user: str, channel: str | None, text: str, action: bool,
                         tags: dict[str, str]) -> None:
        nick = user.split("!", 1)[0]

        def event(**extra: Any) -> Event:
            return Event(self, nick, user, channel, text, action=action, tags=dict(tags), **extra)

        if not action:
            found = self._find_command(text, private=channel is None)
            if found is not None:
                name, args = found
                self._run(self._commands[name], event(command=name, args=args))
        for pattern, handler in self._message_handlers:
            match = pattern.search(text) if pattern is not None else None
            if pattern is None or match is not None:
                self._run(handler, event(match=match))

    def dispatch_join(self, nick: str, channel: str, user: str | None = None) -> None:
        for handler in self._join_handlers:
            self._run(handler, Event(self, nick, user or nick, channel))

    def _find_command(self, text: str, private: bool) -> tuple[str, str] | None:
        if text.startswith(self.prefix):
            text = text[len(self.prefix):]
        elif not private:
            return None
        name, _, args = text.strip().partition(" ")
        name = name.lower()
        return (name, args.strip()) if name in self._commands else None

    def _run(self, handler: Callable[[Event], Any], event: Event) -> defer.Deferred[Any]:
        """Call a handler; a string it returns (now or later) is the reply. Errors are logged."""
        result = defer.maybeDeferred(handler, event)
        result.addCallback(lambda value: defer.ensureDeferred(value)
                           if inspect.iscoroutine(value) else value)

        def answer(value: Any) -> None:
            if isinstance(value, str) and value:
                event.reply(value)

        def failed(failure: Failure) -> None:
            log.failure("bot handler {handler} failed", failure,
                        handler=getattr(handler, "__name__", handler))

        return result.addCallback(answer).addErrback(failed)


class BotClient(ChatClient):
    """The connection of a :class:`Bot`: paced output, nick reclaiming, events to the bot."""

    factory: BotFactory
    #: The server pings us; no need for IRCClient's own keep-alive timer.
    heartbeatInterval = None

    def connectionMade(self) -> None:
        bot = self.factory.bot
        self._limiter = RateLimiter(super().sendLine, self.factory.clock, bot.burst, bot.rate)
        self._reclaim: task.LoopingCall | None = None
        self._source: str | None = None
        self._joining = ""
        bot.client = self
        bot.joined_channels.clear()
        super().connectionMade()

    def connectionLost(self, reason: Failure) -> None:
        bot = self.factory.bot
        self._limiter.stop()
        self._stop_reclaiming()
        if bot.client is self:
            bot.client = None
            bot.joined_channels.clear()
            bot.connection_lost()
        super().connectionLost(reason)

    def sendLine(self, line: str | bytes) -> None:
        urgent = (line if isinstance(line, str) else line.decode("utf-8", "replace")).startswith(
            "PONG "
        )
        self._limiter(line, urgent=urgent)

    def own_source(self) -> str:
        """Our ``nick!user@host`` as others see it (a worst-case guess until the server shows it)."""
        if self._source is not None:
            return self._source
        return source_estimate(self.nickname, self.username or self.nickname)

    # -- registration and the wanted nickname ----------------------------------------------------

    def signedOn(self) -> None:
        super().signedOn()
        if self.nickname != self.factory.nickname:
            self._reclaim = task.LoopingCall(self._try_wanted_nick)
            self._reclaim.clock = self.factory.clock
            self._reclaim.start(self.factory.bot.nick_retry, now=False)
        self.factory.bot.signed_on()

    def _try_wanted_nick(self) -> None:
        if self.nickname != self.factory.nickname:
            self.setNick(self.factory.nickname)

    def _stop_reclaiming(self) -> None:
        if self._reclaim is not None and self._reclaim.running:
            self._reclaim.stop()
        self._reclaim = None

    def nickChanged(self, nick: str) -> None:
        super().nickChanged(nick)
        if self._source is not None:
            self._source = nick + self._source[self._source.index("!"):]
        if nick == self.factory.nickname:
            self._stop_reclaiming()

    def userQuit(self, user: str, quitMessage: str) -> None:
        self._holder_gone(user)

    def userRenamed(self, oldname: str, newname: str) -> None:
        self._holder_gone(oldname)

    def _holder_gone(self, nick: str) -> None:
        if self._reclaim is not None and nick.lower() == self.factory.nickname.lower():
            self.setNick(self.factory.nickname)

    def irc_JOIN(self, prefix: str, params: list[str]) -> None:
        if prefix.split("!", 1)[0] == self.nickname and "!" in prefix:
            self._source = prefix
        self._joining = prefix  # userJoined only gets the nick; the bot's event gets the prefix
        try:
            super().irc_JOIN(prefix, params)
        finally:
            self._joining = ""

    # -- events for the bot ----------------------------------------------------------------------

    def joined(self, channel: str) -> None:
        super().joined(channel)
        self.factory.bot.joined_channels.add(channel.lower())

    def left(self, channel: str) -> None:
        super().left(channel)
        self.factory.bot.joined_channels.discard(channel.lower())

    def kickedFrom(self, channel: str, kicker: str, message: str) -> None:
        super().kickedFrom(channel, kicker, message)
        self.factory.bot.joined_channels.discard(channel.lower())

    def userJoined(self, user: str, channel: str) -> None:
        nick = user.split("!", 1)[0]
        prefix = self._joining if self._joining.split("!", 1)[0] == nick else nick
        self.factory.bot.dispatch_join(nick, channel, prefix)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        self._message(user, channel, message, action=False)

    def action(self, user: str, channel: str, data: str) -> None:
        self._message(user, channel, data, action=True)

    def _message(self, user: str, target: str, text: str, action: bool) -> None:
        channel = None if target.lower() == self.nickname.lower() else target
        self.factory.bot.dispatch_message(user, channel, text, action, self.current_tags)


class BotFactory(ChatClientFactory):
    """Makes the :class:`BotClient` connections of one :class:`Bot`."""

    protocol = BotClient
    noisy = False  # ClientService logs the connection attempts already

    def __init__(
        self,
        bot: Bot,
        *,
        nickname: str | None = None,
        channels: Iterable[str] | None = None,
        password: str | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(
            nickname or bot.nickname,
            bot.channels if channels is None else channels,
            password,
            bot.realname,
        )
        if clock is None:
            from twisted.internet import reactor as clock
        self.bot = bot
        self.clock = clock


def make_service(
    bot: Bot,
    server: str = "tcp:localhost:1234",
    *,
    nickname: str | None = None,
    channels: Iterable[str] | None = None,
    password: str | None = None,
    reactor: Any = None,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
) -> ClientService:
    """A service that keeps ``bot`` connected to ``server`` (a Twisted client endpoint string).

    Start it with ``startService()`` (or add it to an application); it reconnects with backoff.
    """
    if reactor is None:
        from twisted.internet import reactor
    factory = BotFactory(bot, nickname=nickname, channels=channels, password=password,
                         clock=reactor)
    return reconnecting_service(reactor, server, factory, max_delay=max_delay,
                                initial_delay=initial_delay)


def run(bot: Bot, server: str = "tcp:localhost:1234", **options: Any) -> None:
    """Run ``bot`` until interrupted (Ctrl-C), logging to stderr: ``python mybot.py``.

    ``options`` are those of :func:`make_service` (``nickname``, ``channels``, ``password``).
    """
    import sys

    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])

    def main(reactor: Any) -> defer.Deferred[None]:
        service = make_service(bot, server, reactor=reactor, **options)
        service.startService()
        reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
        return defer.Deferred()  # never fires: run until the reactor is stopped

    task.react(main)
