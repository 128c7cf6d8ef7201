"""The Twisted side of the daemon: bytes in, lines to the core, bytes out.

:class:`ChatConnection` owns framing (LF or CR LF), the line-length limit, UTF-8 checks, the flood
bucket and the send queue. Everything else is :class:`twistedchat.server.core.ServerCore`'s.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet import defer, interfaces, task, tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.flood import TokenBucket
from twistedchat.wire.message import MAX_LINE_BYTES, MAX_TAGS_BYTES, Message, ParseError, parse

log = Logger()

#: Seconds a closing connection may take to flush before it is cut.
CLOSE_GRACE = 10.0


def line_too_long(line: bytes) -> bool:
    """Whether a line (without its line ending) is over the IRC limits (tags counted apart)."""
    if len(line) <= MAX_LINE_BYTES - 2:
        return False
    if line[:1] != b"@":
        return True
    space = line.find(b" ")
    if space == -1:
        return True
    return space + 1 > MAX_TAGS_BYTES or len(line) - space - 1 > MAX_LINE_BYTES - 2


def _write_buffer_empty(transport: Any) -> bool:
    """Whether a TCP/UNIX transport has written everything it was given (and is not closing).

    Reads the buffer attributes of ``twisted.internet.abstract.FileDescriptor``; a transport
    without them (TLS, others) never takes the direct path.
    """
    return (
        not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
        and not transport.disconnecting
        and transport.connected
    )


@implementer(interfaces.IPushProducer)
class ChatConnection(Protocol):
    """One client connection: a thin adapter between the transport and the core."""

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory
        self.core = factory.core
        self.config = factory.config
        self.clock = factory.clock
        self.user: Any = None
        self.host = "unknown"
        self._buffer = b""
        self._discarding = False
        self._closing = False
        self._pending: deque[bytes] = deque()
        self._drain_call: Any = None
        self._abort_call: Any = None
        self._bucket: TokenBucket | None = None
        self._write_paused = False
        self._unsent = 0
        self._socket_send: Any = None

    # -- connection life cycle -----------------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.host = peer.host if isinstance(peer, (IPv4Address, IPv6Address)) else "localhost"
        if self.host.startswith(":"):
            # "::1" cannot be a middle parameter (WHO, WHOIS); IRC servers write it "0::1".
            self.host = "0" + self.host
        refusal = self.factory.admit(self)
        if refusal:
            self._closing = True
            self.transport.write(
                Message("ERROR", (f"Closing Link: {self.host} ({refusal})",)).to_bytes()
            )
            self.transport.loseConnection()
            return
        self.user = self.core.connect(self.host, self.factory.wake, self._close, link=self)
        if self.config.flood_control:
            self._bucket = TokenBucket(
                self.config.flood_burst, self.config.flood_rate, self.clock.seconds()
            )
        self.transport.registerProducer(self, True)
        if isinstance(self.transport, tcp.Connection):
            self._socket_send = self.transport.getHandle().send

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        for call in (self._drain_call, self._abort_call):
            if call is not None and call.active():
                call.cancel()
        self._pending.clear()
        if self.user is not None:
            self.factory.forget(self)
            self.core.connection_lost(self.user, "Connection closed")
            self.user = None

    def transmit(self, data: bytes) -> None:
        """Write out what the core queued, minding the send-queue limit."""
        if self._write_paused:
            self._unsent += len(data)
            if self._unsent > self.config.sendq and not self._closing:
                self._closing = True
                self.transport.abortConnection()
                log.info("dropped {host}: send queue exceeded", host=self.host)
                return
        transport = self.transport
        if self._socket_send is not None and _write_buffer_empty(transport):
            # Nothing is waiting in Twisted's buffer, so the bytes can go straight to the socket;
            # this skips the writer registration and the extra reactor turn of transport.write().
            try:
                sent = self._socket_send(data)
            except OSError:  # EAGAIN or a broken connection: the transport deals with either
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def _close(self) -> None:
        if self.user is not None and self.user.outbox:
            self.transmit(b"".join(self.user.outbox))
            self.user.outbox.clear()
        if self._abort_call is None:
            self._closing = True
            # A transport that paused us would, once flushed, resume us instead of closing.
            self.transport.unregisterProducer()
            self.transport.loseConnection()
            self._abort_call = self.clock.callLater(CLOSE_GRACE, self.transport.abortConnection)

    # -- IPushProducer: the transport tells us when its write buffer is full -------------------

    def pauseProducing(self) -> None:
        self._write_paused = True
        self._unsent = 0

    def resumeProducing(self) -> None:
        self._write_paused = False
        self._unsent = 0

    def stopProducing(self) -> None:
        self._write_paused = False

    # -- input ---------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._closing or self.user is None:
            return
        self.user.last_seen = self.clock.seconds()
        buffer = self._buffer + data if self._buffer else data
        start = 0
        limit = MAX_TAGS_BYTES + MAX_LINE_BYTES
        while True:
            end = buffer.find(b"\n", start)
            if end == -1:
                break
            line = buffer[start:end]
            start = end + 1
            if self._discarding:
                self._discarding = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                self._line(line)
            if self._closing:
                return
        rest = buffer[start:]
        if len(rest) > limit:
            # An endless line: answer once, then skip everything up to the next line ending.
            if not self._discarding:
                self._too_long()
            self._discarding = True
            rest = b""
        elif self._discarding:
            rest = b""
        self._buffer = rest

    def _line(self, line: bytes) -> None:
        if self._bucket is None:
            self._process(line)
            return
        if self._pending:
            self._queue(line)
            return
        wait = self._bucket.take(self.clock.seconds())
        if wait == 0.0:
            self._process(line)
        else:
            self._queue(line)
            self._drain_call = self.clock.callLater(wait, self._drain)

    def _queue(self, line: bytes) -> None:
        self._pending.append(line)
        if len(self._pending) > self.config.flood_queue:
            self._pending.clear()
            self.core.quit(self.user, "Excess Flood")

    def _drain(self) -> None:
        self._drain_call = None
        bucket = self._bucket
        assert bucket is not None
        while self._pending and not self._closing:
            wait = bucket.take(self.clock.seconds())
            if wait:
                self._drain_call = self.clock.callLater(wait, self._drain)
                return
            self._process(self._pending.popleft())

    def _too_long(self) -> None:
        self.core.reply(self.user, N.ERR_INPUTTOOLONG, "Input line was too long")

    def _process(self, line: bytes) -> None:
        if line_too_long(line):
            self._too_long()
            return
        user = self.user
        try:
            message = parse(line)
        except UnicodeDecodeError:
            word = line.split(b" ", 2)
            command = word[1] if word[0][:1] in (b"@", b":") and len(word) > 1 else word[0]
            name = command.decode("utf-8", "replace").upper() or "*"
            self.core.fail(user, name, "INVALID_UTF8", "Message rejected: lines must be UTF-8")
            return
        except ParseError as error:
            self.core.fail(user, "*", "INVALID_MESSAGE", f"Message rejected: {error}")
            return
        try:
            self.core.handle(user, message)
        except Exception:
            log.failure("error handling {command} from {host}", command=message.command,
                        host=self.host)
            if self.user is not None and not self._closing:
                self.core.reply(user, N.ERR_UNKNOWNERROR, message.command,
                                "Internal error; the server logged it")


class ChatFactory(ServerFactory):
    """Builds :class:`ChatConnection` s around one shared :class:`ServerCore`."""

    protocol = ChatConnection

    def __init__(self, config: ServerConfig | None = None, clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.config = config or ServerConfig()
        self.clock = clock
        self.core = ServerCore(self.config, clock=clock.seconds)
        self.connections: set[ChatConnection] = set()
        self._per_host: dict[str, int] = {}
        self._closed_waiters: list[defer.Deferred[None]] = []
        self._dirty: list[User] = []
        self._flush_call: Any = None
        self._sweeper = task.LoopingCall(self.core.sweep)
        self._sweeper.clock = clock

    def wake(self, user: User) -> None:
        """A user's outbox got its first line: write it out on the next reactor turn.

        Everything the core queues while handling this turn's input goes out together, one
        ``transport.write`` per connection however many lines it got.
        """
        self._dirty.append(user)
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write every queued outbox to its connection."""
        self._flush_call = None
        dirty, self._dirty = self._dirty, []
        for user in dirty:
            outbox = user.outbox
            if outbox:
                data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
                outbox.clear()
                user.link.transmit(data)

    def buildProtocol(self, addr: Any) -> ChatConnection:
        return ChatConnection(self)

    def startFactory(self) -> None:
        if not self._sweeper.running:
            period = max(0.5, min(15.0, self.config.ping_interval / 4,
                                  self.config.registration_timeout / 4))
            self._sweeper.start(period, now=False)

    def stopFactory(self) -> None:
        if self._sweeper.running:
            self._sweeper.stop()

    def admit(self, connection: ChatConnection) -> str | None:
        """Register a new connection, or say why it is refused."""
        config = self.config
        if config.max_clients and len(self.connections) >= config.max_clients:
            return "Server is full, try again later"
        count = self._per_host.get(connection.host, 0)
        if config.max_per_ip and count >= config.max_per_ip:
            return "Too many connections from your address"
        self._per_host[connection.host] = count + 1
        self.connections.add(connection)
        return None

    def forget(self, connection: ChatConnection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            left = self._per_host.get(connection.host, 1) - 1
            if left:
                self._per_host[connection.host] = left
            else:
                self._per_host.pop(connection.host, None)
            self._fire_if_closed()

    def shutdown(self, reason: str = "Server shutting down") -> defer.Deferred[None]:
        """Tell every client why, close every connection; fires when all are gone."""
        waiter: defer.Deferred[None] = defer.Deferred()
        self._closed_waiters.append(waiter)
        self.core.shutdown(reason)
        self._fire_if_closed()
        return waiter

    def _fire_if_closed(self) -> None:
        if not self.connections:
            waiters, self._closed_waiters = self._closed_waiters, []
            for waiter in waiters:
                waiter.callback(None)
