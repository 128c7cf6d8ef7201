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

The pieces live in small modules: :mod:`~twistedchat.bot.handlers` (decorators, events, command
lines), :mod:`~twistedchat.bot.state` (channel state), :mod:`~twistedchat.bot.permissions`
(``@require``, ``@rate``), :mod:`~twistedchat.bot.schedule` (timers), :mod:`~twistedchat.bot.storage`
(``self.db``), :mod:`~twistedchat.bot.output` (fair queues, commands with results),
:mod:`~twistedchat.bot.client` (the connection), :mod:`~twistedchat.bot.config` (settings) and
:mod:`~twistedchat.bot.testing` (the test kit).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from twisted.application.internet import ClientService
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorCore, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat import __version__
from twistedchat.bot.client import BotClient, BotFactory, one_line, valid_word
from twistedchat.bot.handlers import (
    EXAMPLES_ATTRIBUTE,
    HANDLERS_ATTRIBUTE,
    Event,
    command,
    every,
    example,
    find_matches,
    on_join,
    on_message,
    split_command,
)
from twistedchat.bot.output import OfflineBuffer, Outgoing, ServerError
from twistedchat.bot.permissions import (
    RATE_ATTRIBUTE,
    REQUIRE_ATTRIBUTE,
    RateGate,
    Requirement,
    allowed,
)
from twistedchat.bot.schedule import Scheduler
from twistedchat.bot.state import Channel, ChannelTracker
from twistedchat.bot.storage import Store
from twistedchat.client.protocol import reconnecting_service
from twistedchat.wire.names import normalize_mask

__all__ = ["Bot", "BotClient", "BotFactory", "Event", "command", "every", "example", "make_service",
           "on_join", "on_message", "run"]


class Command:
    """A registered command: its names, handler and help."""

    def __init__(self, names: tuple[str, ...], handler: Callable[[Event], Any]) -> None:
        self.name = names[0]
        self.aliases = names[1:]
        self.handler = handler
        doc = inspect.getdoc(handler) or ""
        self.summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self.examples: list[str] = list(getattr(handler, EXAMPLES_ATTRIBUTE, []))


class Bot:
    """A bot: its settings as class attributes, its behaviour as decorated methods.

    One Bot lives across reconnections; :attr:`client` is the current connection (or None).
    Every class attribute below is a setting that a TOML file or ``--set`` may change.
    """

    #: Wanted nickname (``--nick`` overrides it; :attr:`nick` is the one in use).
    nickname: str = "chatbot"
    #: Channels to join (``--channel`` overrides them).
    channels: Iterable[str] = ("#lobby",)
    realname: str = "twistedchat bot"
    #: What starts a command in a channel (``botnick: command`` works too).
    prefix: str = "!"
    #: Outgoing pace: lines at once, then lines per second (below the server's flood limit).
    burst: int = 10
    rate: float = 2.0
    #: Lines one target may have waiting before more are dropped.
    queue_limit: int = 100
    #: ``say()`` calls kept while disconnected (sent after the next sign-on).
    offline_limit: int = 100
    #: Seconds between attempts to take back :attr:`nickname` while someone else holds it.
    nick_retry: float = 30.0
    #: The CTCP VERSION reply ("" for none).
    version: str = f"twistedchat bot {__version__}"
    #: The QUIT message when the bot is stopped.
    quit_message: str = "Shutting down"
    #: Seconds before rejoining a channel the bot was kicked from (a negative value: never).
    rejoin_after_kick: float = 10.0
    #: Said to the user when one of their commands fails ("" keeps quiet; the error is logged).
    error_reply: str = ""
    #: Set bot mode (``+B``) when the server advertises ``BOT=``.
    bot_mode: bool = True
    #: Answer ``help`` and ``help COMMAND`` (unless the bot defines its own ``help`` command).
    help_command: bool = True
    #: SASL PLAIN login: the account (default: the nickname) and its password.
    sasl_account: str = ""
    sasl_password: str = ""
    #: The SQLite file of :attr:`db` ("" = ``<classname>.sqlite3`` in the working directory).
    database: str = ""
    #: An ISUPPORT token ``NAME=BURST:RATE`` announcing the server's flood limit, if it has one.
    flood_token: str = "FLOODLIMIT"
    #: The connection class (a :class:`BotClient` subclass).
    client_class: type[BotClient] = BotClient

    def __init__(self) -> None:
        self.client: BotClient | None = None
        self.factory: BotFactory | None = None
        self.joined_channels: set[str] = set()
        self.account: str | None = None
        self.state = ChannelTracker(self.nickname)
        self.rates = RateGate()
        self.logger = Logger(namespace=type(self).__name__, source=self)
        self.running = False
        self._clock: IReactorTime | None = None
        self._scheduler: Scheduler | None = None
        self._db: Store | None = None
        self._offline = OfflineBuffer(self.offline_limit)
        self._commands: dict[str, Command] = {}
        self._message_handlers: list[tuple[re.Pattern[str] | None, Callable[[Event], Any]]] = []
        self._event_handlers: dict[str, list[Callable[[Event], Any]]] = {}
        self._jobs: list[tuple[float, bool, Callable[[], Any]]] = []
        names = dict.fromkeys(name for cls in reversed(type(self).__mro__) for name in vars(cls))
        for name in names:  # in definition order, base classes first
            marks = getattr(inspect.getattr_static(self, name), HANDLERS_ATTRIBUTE, ())
            if marks and hasattr(Bot, name):
                raise TypeError(f"{type(self).__name__}.{name} hides Bot.{name}; give the "
                                f"handler another method name (the command name can stay)")
            if not marks:
                continue
            method = getattr(self, name)
            for kind, argument in marks:
                if kind == "command":
                    spec = Command(argument, method)
                    for one in argument:
                        self._commands[one] = spec
                elif kind == "message":
                    self._message_handlers.append((argument, method))
                elif kind == "event":
                    self._event_handlers.setdefault(argument, []).append(method)
                elif kind == "every":
                    self._jobs.append((argument[0], argument[1], method))

    def configure(self, settings: dict[str, Any]) -> None:
        """Apply settings (from a TOML file or ``--set``); see :mod:`twistedchat.bot.config`."""
        from twistedchat.bot.config import apply_settings

        apply_settings(self, settings)
        self._offline = OfflineBuffer(self.offline_limit)
        self.state.own_nick = self.nickname

    # -- identity, state, clock, storage ---------------------------------------------------------

    @property
    def nick(self) -> str:
        """The nickname in use now (``nick_`` while the wanted one is taken)."""
        return self.client.nickname if self.client is not None else self.nickname

    def channel(self, name: str) -> Channel | None:
        """What the bot knows of one of its channels: ``members``, ``ops``, ``voiced``, ``topic``."""
        return self.state.channel(name)

    @property
    def clock(self) -> IReactorTime:
        """The bot's own ``IReactorTime`` for its timers (the reactor unless set, e.g. a Clock)."""
        if self._clock is None:
            from twisted.internet import reactor

            return reactor
        return self._clock

    @clock.setter
    def clock(self, value: IReactorTime) -> None:
        self._clock = value
        if self._scheduler is not None:
            self._scheduler.clock = value

    @property
    def scheduler(self) -> Scheduler:
        """The bot's timers (see :mod:`twistedchat.bot.schedule`)."""
        if self._scheduler is None:
            self._scheduler = Scheduler(self.clock, self.logger)
        return self._scheduler

    def call_later(self, seconds: float, function: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> IDelayedCall:
        """Call ``function`` after ``seconds`` on the bot's clock; cancelled when the bot stops."""
        return self.scheduler.call_later(seconds, function, *args, **kwargs)

    @property
    def db(self) -> Store:
        """The bot's key/value store (SQLite, see :mod:`twistedchat.bot.storage`), opened on use."""
        if self._db is None:
            path = self.database or f"{type(self).__name__.lower()}.sqlite3"
            self._db = Store(path, lambda name: self.state.fold(name))
        return self._db

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the bot's jobs (``@every``); called when its service starts."""
        if self.running:
            return
        self.running = True
        for seconds, now, job in self._jobs:
            self.scheduler.every(seconds, job, now)
        self.logger.info("{bot} started", bot=type(self).__name__)
        self._run_hook(self.started)

    def stop(self) -> None:
        """Stop the jobs and timers and close the store; called when its service stops."""
        if not self.running:
            return
        self.running = False
        self.scheduler.stop()
        self._run_hook(self.stopped)
        if self._db is not None:
            self._db.close()
            self._db = None
        self.logger.info("{bot} stopped", bot=type(self).__name__)

    def quit(self, message: str | None = None) -> None:
        """Say goodbye to the server now (past the pacer); the connection then closes."""
        client = self.client
        if client is not None and client.transport is not None:
            client.send_now(f"QUIT :{message or self.quit_message}")

    # -- what a bot does ---------------------------------------------------------------------

    def say(self, target: str, text: str, *, max_lines: int | None = None,
            priority: int = 0) -> None:
        """Send ``text`` to a channel or nick, split into as many lines as it needs.

        ``max_lines`` cuts a long text (ending it with ``…``); a higher ``priority`` goes
        before waiting lines of lower priority. Each target has its own queue and targets take
        turns, so a long answer to one user does not hold up a short one to another. While the
        bot is disconnected, what it says waits (the last :attr:`offline_limit` messages).
        """
        self._send("PRIVMSG", target, text, max_lines=max_lines, priority=priority)

    def notice(self, target: str, text: str, *, max_lines: int | None = None,
               priority: int = 0) -> None:
        """Like :meth:`say`, as a NOTICE (which bots should use to talk to other bots)."""
        self._send("NOTICE", target, text, max_lines=max_lines, priority=priority)

    def _send(self, command_name: str, target: str, text: str, **options: Any) -> None:
        client = self.client
        if client is None or not client._registered:
            self.keep_for_later(command_name, target, text, **options)
            return
        client.send_message(command_name, target, text, **options)

    def keep_for_later(self, command_name: str, target: str, text: str, **options: Any) -> None:
        """Keep a message until the next sign-on (the oldest go beyond :attr:`offline_limit`)."""
        self._offline.add(Outgoing(command_name, target, text, options))
        if self._offline.dropped == 1:
            self.logger.warn("not connected: keeping only the last {limit} messages",
                             limit=self.offline_limit)

    def flush_offline(self) -> None:
        """Send what was said while disconnected (called after sign-on)."""
        for item in self._offline.drain():
            self._send(item.command, item.target, item.text, **item.options)

    def join(self, channel: str, key: str | None = None) -> defer.Deferred[None]:
        """Join ``channel``; fails with a :class:`ServerError` (banned, invite only, full...)."""
        if not valid_word(channel) or (key is not None and not valid_word(key)):
            return defer.fail(ValueError(f"not a channel (and key): {channel!r}"))
        if self.factory is not None and channel.lower() not in (
                c.lower() for c in self.factory.channels):
            self.factory.channels.append(channel)
        line = f"JOIN {channel}" + (f" {key}" if key else "")
        return self._command(line, [channel], ("403", "405", "471", "473", "474", "475", "476"))

    def part(self, channel: str, reason: str | None = None) -> defer.Deferred[None]:
        """Leave ``channel`` (and do not rejoin it on reconnect)."""
        line = f"PART {channel}" + (f" :{one_line(reason)}" if reason else "")
        return self._command(line, [channel], ("403", "442"))

    def kick(self, channel: str, nick: str, reason: str = "") -> defer.Deferred[None]:
        """Kick ``nick``; fails with the server's error (``482``: the bot is not an operator)."""
        line = f"KICK {channel} {nick}" + (f" :{one_line(reason)}" if reason else "")
        return self._command(line, [channel, nick], ("401", "403", "441", "442", "482"))

    def topic(self, channel: str, text: str) -> defer.Deferred[None]:
        """Set the topic of ``channel``."""
        return self._command(f"TOPIC {channel} :{one_line(text)}", [channel], ("403", "442", "482"))

    def mode(self, target: str, modes: str, *args: str) -> defer.Deferred[None]:
        """Change modes (``mode("#lobby", "+o", "alice")``)."""
        line = " ".join(["MODE", target, modes, *args])
        return self._command(line, [target, modes, *args],
                             ("401", "403", "441", "442", "472", "482", "501", "502"))

    def ban(self, channel: str, who: str) -> defer.Deferred[None]:
        """Ban a nick (as ``*!*@host`` when the bot has seen the host) or a mask."""
        return self.mode(channel, "+b", self._ban_mask(who))

    def unban(self, channel: str, who: str) -> defer.Deferred[None]:
        """Lift a ban set by :meth:`ban` (the same nick or mask)."""
        return self.mode(channel, "-b", self._ban_mask(who))

    def _ban_mask(self, who: str) -> str:
        person = self.state.person(who) if "!" not in who and "@" not in who else None
        if person is not None and person.host:
            return f"*!*@{person.host}"
        return normalize_mask(who)

    def _command(self, line: str, subjects: Iterable[str],
                 codes: Iterable[str]) -> defer.Deferred[None]:
        if self.client is None:
            return defer.fail(ConnectionError("not connected"))
        return self.client.command(line, subjects, codes)

    # -- hooks a subclass may override ---------------------------------------------------------

    def started(self) -> None:
        """The bot's service started (before it is connected); may return a Deferred."""

    def stopped(self) -> None:
        """The bot is stopping: timers are cancelled, :attr:`db` is still open."""

    def signed_on(self) -> None:
        """Connected and registered; the JOINs for :attr:`channels` have just been sent."""

    def connection_lost(self) -> None:
        """The connection is gone; the service reconnects by itself."""

    def kicked(self, channel: str, kicker: str, reason: str) -> None:
        """The bot was kicked; by default it rejoins after :attr:`rejoin_after_kick` seconds."""
        if self.rejoin_after_kick >= 0:
            if self.factory is not None:
                self.factory.channels.append(channel)
            self.call_later(self.rejoin_after_kick, self._rejoin, channel)

    def _rejoin(self, channel: str) -> None:
        if self.client is not None and channel.lower() not in self.joined_channels:
            self.join(channel).addErrback(lambda failure: self.logger.warn(
                "cannot rejoin {channel}: {error}", channel=channel,
                error=failure.getErrorMessage()))

    def server_error(self, code: str, params: list[str]) -> None:
        """The server refused something the bot sent (401 no such nick, 404 cannot send...)."""
        self.logger.warn("server error {error}", error=str(ServerError(code, params)))

    def refuse(self, event: Event, requirement: Requirement) -> None:
        """Tell a user they may not use this (one notice)."""
        self.notice(event.nick, f"Sorry, you need to {requirement.describe()} to use "
                                f"{self._what(event)}.")

    def slow_down(self, event: Event, wait: float) -> None:
        """Tell a user once that they are going too fast."""
        self.notice(event.nick, f"Please wait {math.ceil(wait)} s before using "
                                f"{self._what(event)} again.")

    def _what(self, event: Event) -> str:
        return f"{self.prefix}{event.command}" if event.command else "that"

    # -- dispatch (called by BotClient) ----------------------------------------------------------

    def _account(self, nick: str, tags: dict[str, str]) -> str | None:
        if "account" in tags:
            return tags["account"] or None
        person = self.state.person(nick)
        return person.account if person is not None else None

    def dispatch_message(self, user: str, channel: str | None, text: str, action: bool,
                         tags: dict[str, str]) -> None:
        """A PRIVMSG or action from ``user``: run the matching command and message handlers."""
        nick = user.split("!", 1)[0]
        account = self._account(nick, tags)

        def event(**extra: Any) -> Event:
            return Event(self, nick, user, channel, text, action=action, tags=dict(tags),
                         account=account, **extra)

        found = None
        if not action:
            found = split_command(text, prefix=self.prefix, nick=self.nick,
                                  private=channel is None, fold=self.state.fold)
        name = found[0] if found else None
        known = name in self._commands or (name == "help" and self.help_command)
        if found is not None and known:
            spec = self._commands.get(found[0])
            if spec is not None:
                self._invoke(spec.handler, event(command=spec.name, args=found[1]),
                             as_command=True)
            else:
                self._run(self._help, event(command="help", args=found[1]))
        for pattern, handler in self._message_handlers:
            matches = find_matches(pattern, text) if pattern is not None else []
            if pattern is None or matches:
                extra: dict[str, Any] = {"match": matches[0] if matches else None,
                                         "matches": matches}
                if found is not None and known:
                    spec = self._commands.get(found[0])
                    extra.update(command=spec.name if spec else name, args=found[1])
                self._invoke(handler, event(**extra))

    def dispatch_join(self, nick: str, channel: str, user: str | None = None) -> None:
        """Someone else joined ``channel``: run the ``@on_join`` handlers."""
        self.dispatch_event("join", user or nick, channel)

    def dispatch_event(self, kind: str, source: str, channel: str | None, **fields: Any) -> None:
        """Run the ``@on_<kind>`` handlers for an event from ``source`` (``nick!user@host``)."""
        handlers = self._event_handlers.get(kind, ())
        if not handlers:
            return
        nick = source.split("!", 1)[0]
        tags = fields.pop("tags", {})
        for handler in handlers:
            self._invoke(handler, Event(self, nick, source, channel, tags=dict(tags),
                                        account=self._account(nick, tags), **fields))

    def _invoke(self, handler: Callable[[Event], Any], event: Event,
                as_command: bool = False) -> None:
        """Check ``@require`` and ``@rate``, then run the handler."""
        requirement = getattr(handler, REQUIRE_ATTRIBUTE, None)
        if requirement is not None and not allowed(requirement, event):
            if as_command:  # someone asked for it: say why not; other handlers pass quietly
                self.logger.info("{nick} may not use {handler}", nick=event.user,
                                 handler=handler.__name__)
                self.refuse(event, requirement)
            return
        limit = getattr(handler, RATE_ATTRIBUTE, None)
        if limit is not None:
            wait = self.rates.check(handler.__name__, limit, self.state.fold(event.nick),
                                    self.state.fold(event.channel) if event.channel else None,
                                    self.clock.seconds())
            if wait > 0:
                if self.rates.first_refusal(handler.__name__, self.state.fold(event.nick)):
                    self.slow_down(event if as_command else replace(event, command=None), wait)
                return
        self._run(handler, event)

    def _help(self, event: Event) -> str:
        """List the commands, or explain one: ``help [COMMAND]``."""
        wanted = event.argv[0].lstrip(self.prefix).lower() if event.argv else ""
        if not wanted:
            names = sorted({spec.name for spec in self._commands.values()})
            listed = ", ".join(self.prefix + name for name in names) or "none"
            return f"Commands: {listed}. Say {self.prefix}help COMMAND for more."
        spec = self._commands.get(wanted)
        if spec is None:
            return f"No command {self.prefix}{wanted}. Say {self.prefix}help for the list."
        parts = [f"{self.prefix}{spec.name}: {spec.summary or 'no description'}"]
        if spec.aliases:
            parts.append("Also: " + ", ".join(self.prefix + alias for alias in spec.aliases) + ".")
        if spec.examples:
            parts.append("Example: " + " | ".join(spec.examples))
        return " ".join(parts)

    def _run(self, handler: Callable[[Event], Any], event: Event) -> defer.Deferred[Any]:
        """Call a handler; a string it returns (now or later) is the reply. Errors are logged."""
        result = defer.maybeDeferred(handler, event)
        result.addCallback(lambda value: defer.ensureDeferred(value)
                           if inspect.iscoroutine(value) else value)

        def answer(value: Any) -> None:
            if isinstance(value, str) and value:
                event.reply(value)

        def failed(failure: Failure) -> None:
            self.logger.failure(
                "{handler} failed on {text!r} from {user} in {where}", failure,
                handler=getattr(handler, "__name__", handler), text=event.text,
                user=event.user, where=event.channel or "private")
            if self.error_reply:
                event.reply(f"{event.nick}: {self.error_reply}")

        return result.addCallback(answer).addErrback(failed)

    def _run_hook(self, hook: Callable[[], Any]) -> None:
        result = defer.maybeDeferred(hook)
        result.addCallback(lambda value: defer.ensureDeferred(value)
                           if inspect.iscoroutine(value) else value)
        result.addErrback(lambda failure: self.logger.failure(
            "{hook} failed", failure, hook=hook.__name__))


class BotService(ClientService):
    """Keeps a bot connected; starting it starts the bot, stopping it says QUIT and stops it."""

    bot: Bot

    def startService(self) -> None:
        self.bot.start()
        super().startService()

    def stopService(self) -> defer.Deferred[None]:
        self.bot.quit()
        stopped = super().stopService()

        def stop_bot(result: Any) -> Any:
            self.bot.stop()
            return result

        return stopped.addBoth(stop_bot)


def make_service(
    bot: Bot,
    server: str = "tcp:localhost:1234",
    *,
    nickname: str | None = None,
    channels: Iterable[str] | None = None,
    password: str | None = None,
    sasl_password: str | None = None,
    reactor: IReactorTime | None = None,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
) -> ClientService:
    """A service that keeps ``bot`` connected to ``server`` (a Twisted client endpoint string).

    Start it with ``startService()`` (or add it to an application); it reconnects with backoff.
    ``password`` is the server password (PASS), ``sasl_password`` the bot account's (SASL PLAIN,
    account :attr:`Bot.sasl_account` or the nickname).
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor
        reactor = default_reactor
    factory = BotFactory(bot, nickname=nickname, channels=channels, password=password,
                         sasl_password=sasl_password, clock=reactor)
    service = reconnecting_service(reactor, server, factory, max_delay=max_delay,
                                   initial_delay=initial_delay, service_class=BotService)
    assert isinstance(service, BotService)
    service.bot = bot
    return service


def run(bot: Bot, server: str = "tcp:localhost:1234", **options: Any) -> None:
    """Run ``bot`` until interrupted (Ctrl-C), logging to stderr: ``python mybot.py``.

    ``options`` are those of :func:`make_service` (``nickname``, ``channels``, ``password``).
    """
    import sys

    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])

    def main(reactor: IReactorCore) -> defer.Deferred[None]:
        service = make_service(bot, server, reactor=IReactorTime(reactor), **options)
        service.startService()
        reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
        return defer.Deferred()  # never fires: run until the reactor is stopped

    task.react(main)
