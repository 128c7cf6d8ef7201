"""A small line client for tests: connect over real loopback, send lines, await parsed replies.

Every wait is bounded (``TIMEOUT`` seconds by default) and nothing sleeps. Expectations are
ordered: :meth:`LineClient.expect` looks at lines after the last one it matched, so a test reads
like the conversation it checks. :meth:`LineClient.sync` is a PING/PONG barrier: once it returns,
everything the server sent this client before answering is in :attr:`LineClient.messages`.
"""

from __future__ import annotations

import datetime
import itertools
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import defer, endpoints, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory
from twistedchat.wire.message import Message, parse

#: Seconds any single wait may take before the test fails (real loopback answers in milliseconds).
TIMEOUT = 5.0

Predicate = Callable[[Message], bool]
_sync_ids = itertools.count(1)


def matcher(command: str | None = None, *params: str | None, source: str | None = None,
            where: Predicate | None = None) -> Predicate:
    """A predicate on messages: same command, leading params equal (``None`` = any), source prefix."""

    def matches(message: Message) -> bool:
        if command is not None and message.command != command.upper():
            return False
        if len(params) > len(message.params):
            return False
        if any(p is not None and p != got for p, got in zip(params, message.params[:len(params)], strict=True)):
            return False
        if source is not None and not (message.source or "").startswith(source):
            return False
        return where is None or where(message)

    return matches


class LineClient(Protocol):
    """Raw IRC over a real connection: ``send`` lines, ``expect`` replies, ``closed`` on disconnect."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        self.cursor = 0
        self.nick: str | None = None
        self.closed: defer.Deferred[None] = defer.Deferred()
        self.is_closed = False
        self._buffer = b""
        self._changed: list[defer.Deferred[None]] = []

    # -- protocol ------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if line:
                self.raw.append(line)
                self.messages.append(parse(line))
        self._notify()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.is_closed = True
        self.closed.callback(None)
        self._notify()

    def _notify(self) -> None:
        waiters, self._changed = self._changed, []
        for waiter in waiters:
            if not waiter.called:  # a timed-out wait has already fired
                waiter.callback(None)

    async def _changed_or_timeout(self, deadline: float, what: str) -> None:
        remaining = deadline - reactor.seconds()
        if remaining <= 0:
            raise AssertionError(f"{self.nick or 'client'}: timed out waiting for {what}; "
                                 f"got {[m.to_line() for m in self.messages[self.cursor:]]}")
        waiter: defer.Deferred[None] = defer.Deferred()
        self._changed.append(waiter)
        waiter.addTimeout(remaining, reactor)
        try:
            await waiter
        except defer.TimeoutError:
            if waiter in self._changed:
                self._changed.remove(waiter)
            raise AssertionError(
                f"{self.nick or 'client'}: timed out waiting for {what}; "
                f"got {[m.to_line() for m in self.messages[self.cursor:]]}"
            ) from None

    # -- sending -------------------------------------------------------------------------------

    def send(self, *lines: str | bytes) -> None:
        """Send each line with CR LF (bytes are sent as given, plus CR LF)."""
        self.transport.write(b"".join(
            (line if isinstance(line, bytes) else line.encode("utf-8")) + b"\r\n"
            for line in lines
        ))

    # -- waiting -------------------------------------------------------------------------------

    async def expect(self, command: str | None = None, *params: str | None,
                     source: str | None = None, where: Predicate | None = None,
                     timeout: float = TIMEOUT) -> Message:
        """The next message (after the cursor) that matches; moves the cursor past it."""
        predicate = matcher(command, *params, source=source, where=where)
        what = f"{command} {params}" + (f" from {source}" if source else "")
        deadline = reactor.seconds() + timeout
        while True:
            for index in range(self.cursor, len(self.messages)):
                if predicate(self.messages[index]):
                    self.cursor = index + 1
                    return self.messages[index]
            if self.is_closed:
                raise AssertionError(f"{self.nick}: connection closed while waiting for {what}; "
                                     f"got {[m.to_line() for m in self.messages[self.cursor:]]}")
            await self._changed_or_timeout(deadline, what)

    async def collect_until(self, command: str, *params: str | None,
                            timeout: float = TIMEOUT) -> list[Message]:
        """Every message from the cursor up to and including the next ``command``."""
        start = self.cursor
        await self.expect(command, *params, timeout=timeout)
        return self.messages[start : self.cursor]

    async def sync(self) -> list[Message]:
        """PING/PONG barrier; returns what arrived since the cursor (the PONG excluded)."""
        token = f"sync-{next(_sync_ids)}"
        start = self.cursor
        self.send(f"PING :{token}")
        await self.expect("PONG", None, token)
        return self.messages[start : self.cursor - 1]

    async def wait_closed(self, timeout: float = TIMEOUT) -> None:
        deadline = reactor.seconds() + timeout
        while not self.is_closed:
            await self._changed_or_timeout(deadline, "the connection to close")

    def since(self, command: str | None = None) -> list[Message]:
        """Messages after the cursor (optionally of one command), without waiting."""
        return [m for m in self.messages[self.cursor:]
                if command is None or m.command == command.upper()]

    def skip(self) -> None:
        """Forget everything received so far (move the cursor to the end)."""
        self.cursor = len(self.messages)

    def close(self) -> None:
        self.transport.loseConnection()


class EventLog:
    """Events recorded by a client's callbacks (tuples like ``("joined", "#lobby")``), awaitable."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._changed: list[defer.Deferred[None]] = []

    def add(self, *event: Any) -> None:
        self.events.append(event)
        waiters, self._changed = self._changed, []
        for waiter in waiters:
            if not waiter.called:  # a timed-out wait has already fired
                waiter.callback(None)

    async def expect(self, *prefix: Any, timeout: float = TIMEOUT) -> tuple[Any, ...]:
        """The first recorded event that starts with ``prefix`` (``None`` matches anything)."""
        deadline = reactor.seconds() + timeout
        size = len(prefix)
        while True:
            for event in self.events:
                if len(event) >= size and all(
                    want is None or want == got
                    for want, got in zip(prefix, event[:size], strict=True)
                ):
                    return event
            remaining = deadline - reactor.seconds()
            waiter: defer.Deferred[None] = defer.Deferred()
            self._changed.append(waiter)
            try:
                await waiter.addTimeout(max(remaining, 0), reactor)
            except defer.TimeoutError:
                raise AssertionError(f"timed out waiting for {prefix}; got {self.events}") from None


# -- StringTransport + task.Clock: the real ChatConnection without sockets or real time ----------


class FakeClient:
    """A ChatConnection on a StringTransport, driven by a task.Clock."""

    def __init__(self, factory: ChatFactory, clock: task.Clock, port: int = 40000) -> None:
        self.clock = clock
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)

    def send(self, *lines: str | bytes) -> None:
        """Feed lines (CR LF added; bytes sent as given) in one read, then let the factory flush."""
        self.send_raw(b"".join(
            (line if isinstance(line, bytes) else line.encode()) + b"\r\n" for line in lines
        ))

    def send_raw(self, data: bytes) -> None:
        """Feed bytes exactly as given, in one read, then run the factory's flush turn."""
        self.protocol.dataReceived(data)
        self.clock.advance(0)  # the factory flushes outboxes on the next turn

    def received_raw(self) -> bytes:
        """Everything written since the last call; clears the transport."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def received(self) -> list[Message]:
        """Parsed lines written so far; clears the transport."""
        return [parse(line) for line in self.received_raw().split(b"\r\n") if line]

    @property
    def dropped(self) -> bool:
        return self.transport.disconnecting or self.transport.disconnected

    def lose(self) -> None:
        """What the reactor does once the transport is closed: tell the protocol it is gone."""
        self.transport.disconnected = True
        self.protocol.connectionLost(Failure(ConnectionDone()))


def clocked_factory(**settings: Any) -> tuple[ChatFactory, task.Clock]:
    """A started ChatFactory (server name ``clock.server``) on a fresh task.Clock."""
    clock = task.Clock()
    clock.advance(1_000_000)
    factory = ChatFactory(ServerConfig(name="clock.server", **{"cloak_hosts": False, **settings}),
                          clock=clock)
    factory.startFactory()
    return factory, clock


def advance(clock: task.Clock, seconds: float, step: float = 0.5) -> None:
    """Move the clock on in steps, so periodic calls run as they would in real time."""
    for _ in range(int(seconds / step)):
        clock.advance(step)


class ErrorEvents:
    """Collects every log event at level error or above, or that carries a failure (a traceback).

    Use as a context manager around the code under test; :attr:`texts` says what was logged.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def observe(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if event.get("log_failure") is not None or (level is not None and level >= LogLevel.error):
            self.events.append(event)

    @property
    def texts(self) -> list[str]:
        """Each collected event as text, with its traceback if it has one."""
        out = []
        for event in self.events:
            failure = event.get("log_failure")
            text = formatEvent(event)
            out.append(f"{text}\n{failure.getTraceback()}" if failure is not None else text)
        return out

    def __enter__(self) -> ErrorEvents:
        globalLogPublisher.addObserver(self.observe)
        return self

    def __exit__(self, *exc_info: object) -> None:
        globalLogPublisher.removeObserver(self.observe)


async def connect(endpoint: str) -> LineClient:
    """Open a raw connection to a Twisted client endpoint description."""
    client = LineClient()
    await endpoints.connectProtocol(endpoints.clientFromString(reactor, endpoint), client)
    return client


async def register(server: Any, nick: str, *, cap: bool = False, password: str | None = None,
                   realname: str | None = None, caps: str | None = None) -> LineClient:
    """Connect to ``server`` (anything with ``client_endpoint``) and register ``nick`` (having
    asked for ``caps``, space-separated, when given).

    Returns after the end of the MOTD (376 or 422), with the cursor past the welcome burst.
    """
    client = await connect(server.client_endpoint)
    client.nick = nick
    cap = cap or caps is not None
    if caps is not None:
        client.send(f"CAP REQ :{caps}")
    elif cap:
        client.send("CAP LS 302")
    if password is not None:
        client.send(f"PASS {password}")
    client.send(f"NICK {nick}", f"USER {nick.lower()} 0 * :{realname or nick + ' Tester'}")
    if cap:
        client.send("CAP END")
    await client.expect("001")
    await client.expect(where=lambda m: m.command in ("376", "422"))
    return client


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT,
                     interval: float = 0.02) -> Any:
    """Poll ``condition`` on the reactor (no sleep) until it is truthy; fail after ``timeout``."""
    deadline = reactor.seconds() + timeout
    while True:
        value = condition()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await task.deferLater(reactor, interval, lambda: None)


def break_command(monkeypatch: Any, core: Any, command: str) -> None:
    """Make the core raise ``RuntimeError`` whenever it handles ``command`` (for the rest of a test)."""
    handle = core.handle

    def broken(user: Any, message: Message) -> None:
        if message.command == command:
            raise RuntimeError("handler bug")
        handle(user, message)

    monkeypatch.setattr(core, "handle", broken)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def twistd_command() -> list[str]:
    """How to run this venv's ``twistd``."""
    script = Path(sys.executable).with_name("twistd")
    if script.exists():
        return [str(script)]
    found = shutil.which("twistd")
    assert found, "twistd is not installed"
    return [found]


def checkout_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess that must import this checkout from any directory."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


class DaemonProcess:
    """``twistd -n chat`` as a child process on a free loopback port (for SIGTERM and interop)."""

    def __init__(self, tmp_path: Path, *args: str, twistd_args: tuple[str, ...] = (),
                 **popen: Any) -> None:
        """``args`` go to ``chat``, ``twistd_args`` to twistd, ``popen`` to :class:`subprocess.Popen`."""
        self.port = free_port()
        self.host = "127.0.0.1"
        self.client_endpoint = f"tcp:{self.host}:{self.port}"
        self.log_path = tmp_path / "twistd.log"
        command = [*twistd_command(), "-n", "--pidfile=", f"--logfile={self.log_path}",
                   *twistd_args, "chat", "--port", f"tcp:{self.port}:interface=127.0.0.1", *args]
        self.process = subprocess.Popen(command, cwd=tmp_path, env=checkout_env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)

    async def wait_listening(self, timeout: float = 15.0) -> None:
        def listening() -> bool:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                raise AssertionError(f"twistd exited early ({self.process.returncode}): {output}"
                                     f"{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        await wait_until(listening, f"twistd listens on {self.port}", timeout, interval=0.05)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait (polling the reactor, bounded) for the exit status; kill if stuck."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await wait_until(lambda: self.process.poll() is not None, "twistd exits", timeout)
            except AssertionError:
                self.process.kill()
        self.stop()
        return self.process.returncode

    def stop(self) -> None:
        """Make sure the process is gone (blocking; for teardown after :meth:`terminate`)."""
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a child process if it still runs, wait (bounded, then SIGKILL), close its output."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stdout:
        process.stdout.close()


def write_self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for ``localhost``, valid for a day, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def listener_for(reactor: Any, description: str, factory: Any) -> tuple[Any, Any]:
    """The endpoint and factory a ChatService would listen with for ``description`` (the
    standard library's TLS for ``ssl:`` unless the factory's config says ``twisted``)."""
    from twisted.internet import endpoints

    from twistedchat.server.tls import stdlib_tls_factory

    lean = stdlib_tls_factory(description, factory, reactor)
    if lean is not None:
        return endpoints.serverFromString(reactor, lean[0]), lean[1]
    return endpoints.serverFromString(reactor, description), factory


def tracebacks(events: list[dict]) -> list[str]:
    """The logged failures (tracebacks) among log events (the ``log_events`` fixture's)."""
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in events if "log_failure" in e]
