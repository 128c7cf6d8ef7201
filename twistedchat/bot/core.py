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
:mod:`~twistedchat.bot.actions` (what a bot sends), :mod:`~twistedchat.bot.dispatch` (running its
handlers), :mod:`~twistedchat.bot.service` (staying connected, ``run()``),
:mod:`~twistedchat.bot.client` (the connection), :mod:`~twistedchat.bot.config` (settings) and
:mod:`~twistedchat.bot.testing` (the test kit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twistedchat import __version__
from twistedchat.bot.actions import BotActions
from twistedchat.bot.client import BotClient, BotFactory
from twistedchat.bot.dispatch import Command as Command  # re-exported: moved there
from twistedchat.bot.dispatch import Dispatcher
from twistedchat.bot.handlers import Event, command, every, example, on_join, on_message
from twistedchat.bot.output import OfflineBuffer, ServerError
from twistedchat.bot.permissions import RateGate, Requirement
from twistedchat.bot.schedule import Scheduler
from twistedchat.bot.service import BotService as BotService  # re-exported: moved there
from twistedchat.bot.service import make_service, run
from twistedchat.bot.state import Channel, ChannelTracker
from twistedchat.bot.storage import Store

__all__ = ["Bot", "BotClient", "BotFactory", "Event", "command", "every", "example", "make_service",
           "on_join", "on_message", "run"]


class Bot(BotActions):
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
        self._dispatch = Dispatcher(self, Bot)

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
        for seconds, now, job in self._dispatch.jobs:
            self.scheduler.every(seconds, job, now)
        self.logger.info("{bot} started", bot=type(self).__name__)
        self._dispatch.run_hook(self.started)

    def stop(self) -> None:
        """Stop the jobs and timers and close the store; called when its service stops."""
        if not self.running:
            return
        self.running = False
        self.scheduler.stop()
        self._dispatch.run_hook(self.stopped)
        if self._db is not None:
            self._db.close()
            self._db = None
        self.logger.info("{bot} stopped", bot=type(self).__name__)

    def quit(self, message: str | None = None) -> None:
        """Say goodbye to the server now (past the pacer); the connection then closes."""
        client = self.client
        if client is not None and client.transport is not None:
            client.send_now(f"QUIT :{message or self.quit_message}")

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

    def dispatch_message(self, user: str, channel: str | None, text: str, action: bool,
                         tags: dict[str, str]) -> None:
        """A PRIVMSG or action from ``user``: run the matching command and message handlers."""
        self._dispatch.dispatch_message(user, channel, text, action, tags)

    def dispatch_join(self, nick: str, channel: str, user: str | None = None) -> None:
        """Someone else joined ``channel``: run the ``@on_join`` handlers."""
        self._dispatch.dispatch_join(nick, channel, user)

    def dispatch_event(self, kind: str, source: str, channel: str | None, **fields: Any) -> None:
        """Run the ``@on_<kind>`` handlers for an event from ``source`` (``nick!user@host``)."""
        self._dispatch.dispatch_event(kind, source, channel, **fields)

