"""The bot test kit: a scripted fake server with fake clocks, and pytest fixtures on the real daemon.

Without sockets (any test runner)::

    from twistedchat.bot.testing import FakeServer

    def test_roll():
        server = FakeServer(DiceBot()).register().join("#lobby", "alice")
        server.say("alice", "#lobby", "!roll 1d6")
        assert server.sent()[0].startswith("PRIVMSG #lobby :alice rolled")

:class:`FakeServer` gives the bot two :class:`~twisted.internet.task.Clock` s: ``clock`` for the
bot's own timers (``@every``, ``call_later``) and ``pacer_clock`` for its output pacing, which
:meth:`FakeServer.sent` drains. Against the real daemon, with ``pytest-twisted``, this module is
a pytest plugin (registered under the ``pytest11`` entry point, or name it in ``conftest.py`` as
``pytest_plugins = ["twistedchat.bot.testing"]``) with three fixtures: ``chat_daemon`` (the
daemon on 127.0.0.1, an ephemeral port), ``bot_runner`` (``await bot_runner(bot)`` connects a bot
and waits until it is in its channels; stopped at teardown) and ``chat_user`` (``await
chat_user("alice", "#lobby")``: a raw IRC user that ``send`` s lines and ``expect`` s replies).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.application.internet import ClientService
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from twistedchat.wire.message import Message, parse

if TYPE_CHECKING:  # imported where used: Twisted's IRC module installs the default reactor
    from twistedchat.bot.core import Bot
    from twistedchat.server.config import ServerConfig

#: Capabilities the fake server offers unless told otherwise.
DEFAULT_CAPS = ("multi-prefix", "server-time", "message-tags", "userhost-in-names")
#: ISUPPORT tokens the fake server sends unless told otherwise (those of the real daemon).
DEFAULT_ISUPPORT = ("CASEMAPPING=rfc1459", "CHANMODES=b,k,l,imnst", "CHANTYPES=#",
                    "PREFIX=(ov)@+", "NICKLEN=30")
#: Timer firings one FakeServer.advance() allows (a timer that reschedules at once would loop).
MAX_TIMER_STEPS = 100_000
#: Seconds any wait of the real-daemon helpers may take before the test fails.
TIMEOUT = 5.0


class FakeServer:
    """A bot connected to a scripted server over a ``StringTransport``; no sockets, no real time.

    Lines the test sends with :meth:`send` (or the helpers :meth:`say`, :meth:`join`...) reach the
    bot at once; :meth:`sent` returns what the bot wrote, after letting its pacer drain.
    """

    def __init__(self, bot: Bot, *, nick: str | None = None, channels: Iterable[str] | None = None,
                 caps: Iterable[str] = DEFAULT_CAPS, isupport: Iterable[str] = DEFAULT_ISUPPORT,
                 accounts: dict[str, str] | None = None, sasl_password: str | None = None,
                 name: str = "fake.server", connect: bool = True) -> None:
        self.bot = bot
        self.name = name
        self.caps = list(caps)
        self.isupport = list(isupport)
        #: account -> password, checked by the fake SASL PLAIN exchange
        self.accounts = dict(accounts or {})
        from twistedchat.bot.client import BotFactory

        self.clock = task.Clock()
        self.pacer_clock = task.Clock()
        bot.clock = self.clock
        self.factory = BotFactory(bot, nickname=nick, channels=channels, clock=self.pacer_clock,
                                  sasl_password=sasl_password)
        self.client: Any = None
        self.transport = StringTransport()
        self._written: list[str] = []
        if connect:
            self.connect()

    # -- the connection ----------------------------------------------------------------------------

    def connect(self) -> FakeServer:
        """Open a (new) connection, starting the bot first if it is not running."""
        if not self.bot.running:
            self.bot.start()
        self.transport = StringTransport()
        self.client = self.factory.buildProtocol(None)
        self.client.makeConnection(self.transport)
        return self

    def disconnect(self) -> None:
        """The connection drops (the bot sees ``connection_lost``)."""
        from twisted.internet.error import ConnectionLost

        self.client.connectionLost(Failure(ConnectionLost()))

    def stop(self) -> None:
        """Stop the bot (timers, store) as its service would, after the QUIT."""
        self.bot.quit()
        self.bot.stop()

    # -- lines in and out --------------------------------------------------------------------------

    def send(self, *lines: str) -> None:
        """Lines from the server to the bot."""
        for line in lines:
            self.client.dataReceived(line.encode("utf-8") + b"\r\n")

    def flush(self, limit: float = 3600.0) -> None:
        """Let the pacer send everything waiting (advancing only the pacer's clock)."""
        spent = 0.0
        while self.client.waiting and spent < limit:
            self.pacer_clock.advance(1.0)
            spent += 1.0

    def sent(self, drain: bool = True) -> list[str]:
        """Lines the bot wrote since the last call (after draining its pacer unless ``drain=False``)."""
        if drain:
            self.flush()
        data = self.transport.value().decode("utf-8")
        self.transport.clear()
        lines = self._written + [line for line in data.split("\r\n") if line]
        self._written = []
        return lines

    def sent_messages(self, drain: bool = True) -> list[Message]:
        """Like :meth:`sent`, parsed."""
        return [parse(line.encode("utf-8")) for line in self.sent(drain)]

    def advance(self, seconds: float) -> None:
        """Move the bot's own clock (its ``@every`` jobs and ``call_later`` timers), stopping at
        each timer due on the way so a repeating job runs once per interval."""
        advance_clock(self.clock, seconds)

    # -- registration ------------------------------------------------------------------------------

    def register(self, nick: str | None = None, *, motd: bool = True) -> FakeServer:
        """Answer the bot's CAP negotiation (and SASL), then welcome it as ``nick``."""
        nick = nick or self.factory.nickname
        self.send(f":{self.name} CAP * LS :{' '.join(self.caps)}")
        self._negotiate()
        self.send(f":{self.name} 001 {nick} :Welcome to the fake network {nick}",
                  f":{self.name} 005 {nick} {' '.join(self.isupport)} :are supported by this server")
        if motd:
            self.send(f":{self.name} 422 {nick} :MOTD File is missing")
        return self

    def _negotiate(self) -> None:
        offered = {cap.split("=", 1)[0] for cap in self.caps}
        for _ in range(20):  # each round answers what the bot just said
            lines = self.sent()
            if not lines:
                return
            for line in lines:
                self._written.append(line)
                message = parse(line.encode("utf-8"))
                if message.command == "CAP" and message.params[:1] == ("REQ",):
                    wanted = message.params[-1].split()
                    verdict = "ACK" if set(wanted) <= offered else "NAK"
                    self.send(f":{self.name} CAP * {verdict} :{' '.join(wanted)}")
                elif message.command == "AUTHENTICATE":
                    self._authenticate(message.params[0])
                elif message.command == "CAP" and message.params[:1] == ("END",):
                    return

    def _authenticate(self, data: str) -> None:
        if data == "PLAIN":
            self.send("AUTHENTICATE +")
            return
        try:
            _, account, password = base64.b64decode(data).decode().split("\0")
        except (ValueError, UnicodeDecodeError):
            self.send(f":{self.name} 904 * :SASL authentication failed")
            return
        if self.accounts.get(account) == password:
            self.send(f":{self.name} 900 * *!*@* {account} :You are now logged in as {account}",
                      f":{self.name} 903 * :SASL authentication successful")
        else:
            self.send(f":{self.name} 904 * :SASL authentication failed")

    # -- what others do ----------------------------------------------------------------------------

    @staticmethod
    def source(nick: str) -> str:
        """The ``nick!user@host`` the fake server gives ``nick``."""
        return f"{nick}!{nick.lower()}@users.test"

    def join(self, channel: str, *members: str, ops: Iterable[str] = (),
             voiced: Iterable[str] = (), topic: str = "") -> FakeServer:
        """The bot joins ``channel``, finding ``members`` there (``ops``/``voiced`` among them)."""
        me = self.client.nickname
        ops, voiced = set(ops), set(voiced)
        names = [("@" if n in ops else "+" if n in voiced else "") + n for n in members]
        self.send(f":{self.source(me)} JOIN {channel}")
        if topic:
            self.send(f":{self.name} 332 {me} {channel} :{topic}")
        self.send(f":{self.name} 353 {me} = {channel} :{' '.join([me, *names])}",
                  f":{self.name} 366 {me} {channel} :End of /NAMES list")
        return self

    def user_joins(self, nick: str, channel: str, account: str | None = None) -> None:
        """``nick`` joins (with ``extended-join`` data when ``account`` is given; ``*``: none)."""
        extra = f" {account} :{nick}" if account is not None else ""
        self.send(f":{self.source(nick)} JOIN {channel}{extra}")

    def say(self, nick: str, target: str, text: str, *, account: str | None = None,
            tags: dict[str, str] | None = None) -> None:
        """``nick`` says ``text`` to a channel or to the bot (``account`` adds an account tag)."""
        tags = dict(tags or {})
        if account is not None:
            tags["account"] = account
        head = ("@" + ";".join(f"{k}={v}" for k, v in tags.items()) + " ") if tags else ""
        self.send(f"{head}:{self.source(nick)} PRIVMSG {target} :{text}")


def advance_clock(clock: task.Clock, seconds: float) -> None:
    """Move ``clock`` forward by ``seconds``, firing every call due on the way at its own time."""
    target = clock.seconds() + seconds
    for _ in range(MAX_TIMER_STEPS):
        due = [call.getTime() for call in clock.getDelayedCalls() if call.getTime() <= target]
        if not due:
            break
        clock.advance(max(0.0, min(due) - clock.seconds()))
    else:
        raise RuntimeError(f"more than {MAX_TIMER_STEPS} timers fired in {seconds} s")
    clock.advance(max(0.0, target - clock.seconds()))


# -- the real daemon, for pytest-twisted tests ----------------------------------------------------


class ChatDaemon:
    """The real twistedchat daemon in this process, on 127.0.0.1 and a port kept across
    :meth:`stop` and :meth:`start` (ephemeral the first time)."""

    host = "127.0.0.1"

    def __init__(self, config: ServerConfig | None = None, **settings: Any) -> None:
        from twistedchat.server.config import ServerConfig
        from twistedchat.server.net import ChatFactory

        if config is None:
            config = ServerConfig(**{"name": "test.server", "network": "TestNet", **settings})
        self.config = config
        self.factory = ChatFactory(config)
        self.port = 0
        self._listening: IListeningPort | None = None

    @property
    def client_endpoint(self) -> str:
        """A Twisted client endpoint string for this daemon."""
        return f"tcp:{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (again, on the same port after a :meth:`stop`)."""
        from twisted.internet import endpoints, reactor

        endpoint = endpoints.TCP4ServerEndpoint(reactor, self.port, interface=self.host)
        listening = self._listening = await endpoint.listen(self.factory)
        address = listening.getHost()
        assert isinstance(address, IPv4Address), "a TCP4 endpoint listens on IPv4"
        self.port = address.port

    async def stop(self, reason: str = "Server restarting") -> None:
        """Close the listener, then drop every client (they see ERROR) and wait until all are gone."""
        if self._listening is not None:
            stopped = self._listening.stopListening()
            if stopped is not None:
                await stopped
            self._listening = None
        await self.factory.shutdown(reason)


class ChatUser(Protocol):
    """A plain IRC user for tests: :meth:`send` lines, :meth:`expect` what arrives (bounded waits)."""

    def __init__(self, nick: str = "") -> None:
        self.nick = nick
        self.messages: list[Message] = []
        self.cursor = 0
        self._buffer = b""
        self._waiters: list[defer.Deferred[None]] = []
        self.closed = False

    def dataReceived(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if line:
                self.messages.append(parse(line))
        self._wake()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def send(self, *lines: str) -> None:
        """Send each line (CR LF added)."""
        assert self.transport is not None, "connected"
        self.transport.write(b"".join(line.encode("utf-8") + b"\r\n" for line in lines))

    def say(self, target: str, text: str) -> None:
        """Send a PRIVMSG."""
        self.send(f"PRIVMSG {target} :{text}")

    async def expect(self, command: str, *params: str | None, source: str | None = None,
                     timeout: float = TIMEOUT) -> Message:
        """The next message after the last one matched with this command, leading ``params``
        (``None``: any) and a source starting with ``source``."""

        def matches(message: Message) -> bool:
            return (message.command == command.upper()
                    and len(message.params) >= len(params)
                    and all(p is None or p == got
                            for p, got in zip(params, message.params, strict=False))
                    and (source is None or (message.source or "").startswith(source)))

        return await self._next(matches, f"{command} {params}", timeout)

    async def expect_text(self, target: str, source: str, timeout: float = TIMEOUT) -> str:
        """The text of the next PRIVMSG or NOTICE from ``source`` (a nick) to ``target``."""

        def matches(message: Message) -> bool:
            return (message.command in ("PRIVMSG", "NOTICE") and message.params[:1] == (target,)
                    and (message.source or "").split("!", 1)[0] == source)

        message = await self._next(matches, f"text from {source} to {target}", timeout)
        return message.params[-1]

    async def _next(self, matches: Callable[[Message], bool], what: str,
                    timeout: float) -> Message:
        from twisted.internet import reactor

        deadline = reactor.seconds() + timeout
        while True:
            for index in range(self.cursor, len(self.messages)):
                if matches(self.messages[index]):
                    self.cursor = index + 1
                    return self.messages[index]
            if reactor.seconds() >= deadline or self.closed:
                got = [m.to_line() for m in self.messages[self.cursor:]]
                raise AssertionError(f"{self.nick}: no {what} within {timeout} s; got {got}")
            waiter: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(waiter)
            waiter.addTimeout(max(0.0, deadline - reactor.seconds()), reactor)
            try:
                await waiter
            except defer.TimeoutError:
                pass

    def close(self) -> None:
        """Hang up."""
        assert self.transport is not None, "connected"
        self.transport.loseConnection()


async def connect_user(daemon: ChatDaemon, nick: str, *channels: str) -> ChatUser:
    """Register ``nick`` on ``daemon`` (anything with ``client_endpoint``) and join ``channels``."""
    from twisted.internet import endpoints, reactor

    user = ChatUser(nick)
    endpoint = endpoints.clientFromString(reactor, daemon.client_endpoint)
    await endpoints.connectProtocol(endpoint, user)
    user.send(f"NICK {nick}", f"USER {nick.lower()} 0 * :{nick}")
    await user.expect("001")
    for channel in channels:
        user.send(f"JOIN {channel}")
        await user.expect("366", None, channel)
    return user


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition`` on the reactor (no sleep) until truthy; fail after ``timeout`` seconds."""
    from twisted.internet import reactor

    deadline = reactor.seconds() + timeout
    while True:
        value = condition()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await task.deferLater(reactor, 0.02, lambda: None)


class BotRunner:
    """Starts bots against a daemon and stops them all at the end."""

    def __init__(self, daemon: ChatDaemon) -> None:
        self.daemon = daemon
        self.services: list[ClientService] = []

    async def __call__(self, bot: Bot, *, channels: Iterable[str] | None = None,
                      nickname: str | None = None, **options: Any) -> ClientService:
        """Connect ``bot`` and wait until it has joined its channels; returns its service."""
        from twisted.internet import reactor

        from twistedchat.bot.core import make_service

        service = make_service(bot, self.daemon.client_endpoint, nickname=nickname,
                               channels=None if channels is None else list(channels),
                               reactor=reactor, initial_delay=0.05, max_delay=0.5, **options)
        service.startService()
        self.services.append(service)
        wanted = {c.lower() for c in bot.channels}
        await wait_until(lambda: bot.joined_channels >= wanted, f"{bot.nickname} joins {wanted}")
        return service

    async def stop(self) -> None:
        """Stop every bot started (each says QUIT)."""
        for service in self.services:
            if service.running:
                await service.stopService()
        self.services.clear()


try:
    import pytest_twisted
except ImportError:  # pragma: no cover - the fixtures need pytest and pytest-twisted
    pass
else:

    @pytest_twisted.async_yield_fixture
    async def chat_daemon():
        """The real daemon on 127.0.0.1 (an ephemeral port), server name ``test.server``."""
        daemon = ChatDaemon()
        await daemon.start()
        yield daemon
        await daemon.stop()

    @pytest_twisted.async_yield_fixture
    async def bot_runner(chat_daemon):
        """``await bot_runner(bot)``: the bot connected to ``chat_daemon`` and in its channels."""
        runner = BotRunner(chat_daemon)
        yield runner
        await runner.stop()

    @pytest_twisted.async_yield_fixture
    async def chat_user(chat_daemon):
        """``await chat_user("alice", "#lobby")``: a registered user in those channels."""
        users: list[ChatUser] = []

        async def make(nick: str, *channels: str) -> ChatUser:
            user = await connect_user(chat_daemon, nick, *channels)
            users.append(user)
            return user

        yield make
        for user in users:
            if not user.closed:
                user.close()

