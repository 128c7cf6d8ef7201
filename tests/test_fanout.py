"""Fan-out: direct writes to idle sockets (guarded, pinned), Twisted's buffer otherwise, one failing
write strands nobody, and the line pipeline serves a message-based transport too."""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from conftest import RunningServer
from helpers import TIMEOUT, LineClient, register, wait_until, write_self_signed
from twisted.internet import interfaces, protocol, reactor, ssl, task
from twisted.logger import formatEvent, globalLogPublisher

from twistedchat.server import fastpath
from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory
from twistedchat.server.pipeline import split_lines
from twistedchat.wire.message import parse

COUNT = 4000  # ~400 KB of PRIVMSG lines: far more than a small receive buffer holds


async def small_buffer_client(server: RunningServer, nick: str) -> LineClient:
    """A client whose socket has a tiny receive buffer, so the server's writes back up quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.setblocking(False)
    client = LineClient()
    client.nick = nick
    factory = protocol.Factory.forProtocol(lambda: client)
    reactor.adoptStreamConnection(sock.fileno(), socket.AF_INET, factory)
    sock.close()  # the reactor holds its own duplicate of the descriptor
    client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    await client.expect("001")
    return client


@pytest_twisted.ensureDeferred
async def test_slow_reader_gets_everything_in_order():
    server = RunningServer(ServerConfig(name="test.server", flood_rate=0, sendq=64 * 1024 * 1024))
    await server.start()
    try:
        reader = await small_buffer_client(server, "reader")
        sender = await small_buffer_client(server, "sender")
        for client in (reader, sender):
            client.send("JOIN #flow")
            await client.expect("366")
        (reader_connection,) = [c for c in server.factory.connections if c.user.nick == "reader"]
        # A small kernel send buffer on the server's side too, so its writes back up quickly.
        reader_connection.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                           4096)
        buffered = []
        real_write = reader_connection.transport.write
        reader_connection.transport.write = lambda data: (buffered.append(len(data)),
                                                         real_write(data))
        lines = [f"PRIVMSG #flow :message {i:05d} " + "x" * 60 for i in range(COUNT)]
        half = COUNT // 2
        reader.transport.pauseProducing()  # stop reading: the server's writes back up
        sender.send(*lines[:half])
        await sender.sync()
        reader.transport.resumeProducing()  # the socket drains while Twisted's buffer is not empty
        for start in range(half, COUNT, 100):  # the rest arrives while the backlog is written
            sender.send(*lines[start : start + 100])
            await sender.sync()
        await wait_until(lambda: len(reader.since("PRIVMSG")) >= COUNT, "all messages",
                         timeout=TIMEOUT * 4)
        assert buffered, "the test never made the server fall back to Twisted's write buffer"
        texts = [m.params[1].split()[1] for m in reader.since("PRIVMSG")]
        assert texts == [f"{i:05d}" for i in range(COUNT)]
    finally:
        await server.stop()


# -- the guarded fast path --------------------------------------------------------------------------


def test_fast_path_attributes_exist_on_the_installed_twisted():
    """Pins the private transport attributes the fast path reads; a Twisted upgrade that renames
    them fails here (and the daemon falls back to transport.write instead of going quiet)."""
    assert fastpath.direct_write_problem() is None
    assert set(fastpath.REQUIRED_ATTRIBUTES) == {"dataBuffer", "offset", "_tempDataLen",
                                                 "connected", "disconnecting", "TLS"}


@pytest_twisted.ensureDeferred
async def test_fast_path_runs_on_a_live_tcp_connection_with_the_pinned_attributes(chat_server):
    client = await register(chat_server, "pinned")
    (connection,) = chat_server.factory.connections
    transport = connection.transport
    for name, kind in fastpath.REQUIRED_ATTRIBUTES.items():
        assert isinstance(getattr(transport, name), kind), name
    assert fastpath.pending_bytes(transport) == 0
    assert isinstance(connection.pipeline.write.__self__, fastpath.DirectWriter)
    # the fan-out calls the writer's transmit, which falls back to the pipeline's own
    assert connection.pipeline.transmit.__self__ is connection.pipeline.write.__self__
    assert connection.pipeline.write.__self__.slow == connection.pipeline.transmit_checked
    client.close()


class FakeSocket:
    """A socket whose ``send`` takes at most ``room`` bytes a call, or raises ``error``."""

    def __init__(self, room: int = 1 << 20, error: OSError | None = None) -> None:
        self.room = room
        self.error = error
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        self.sent.append(data[:self.room])
        return min(len(data), self.room)


def fake_tcp(sock: FakeSocket, **attributes: object) -> object:
    """A plain TCP transport (no real socket) with Twisted's buffer attributes as given."""
    from twisted.internet import tcp

    class FakeTCP(tcp.Connection):
        def __init__(self) -> None:
            self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
            self.connected, self.disconnecting, self.TLS = 1, 0, False
            self.__dict__.update(attributes)
            self.written: list[bytes] = []

        def getHandle(self) -> FakeSocket:
            return sock

        def write(self, data: bytes) -> None:
            self.written.append(data)

    return FakeTCP()


@pytest.mark.parametrize(("attributes", "room", "error", "to_socket", "to_pipeline"), [
    ({}, 1 << 20, None, [b"abcdef"], []),  # the common case: one send, nothing else
    ({"_tempDataLen": 3}, 1 << 20, None, [], [b"abcdef"]),  # Twisted holds bytes: keep order
    ({"dataBuffer": b"xyz", "offset": 1}, 1 << 20, None, [], [b"abcdef"]),
    ({"TLS": True}, 1 << 20, None, [], [b"abcdef"]),  # never plaintext after startTLS
    ({"disconnecting": 1}, 1 << 20, None, [], [b"abcdef"]),
    ({"connected": 0}, 1 << 20, None, [], [b"abcdef"]),
    ({}, 4, None, [b"abcd"], [b"ef"]),  # a partial send: the rest goes the pipeline's way
    ({}, 1 << 20, BlockingIOError(), [], [b"abcdef"]),
])
def test_direct_transmit_sends_whole_writes_and_hands_the_rest_to_the_pipeline(
        attributes, room, error, to_socket, to_pipeline):
    sock = FakeSocket(room, error)
    slow: list[bytes] = []
    writer = fastpath.DirectWriter(fake_tcp(sock, **attributes), slow=slow.append)
    writer.transmit(b"abcdef")
    assert sock.sent == to_socket
    assert slow == to_pipeline


@pytest_twisted.ensureDeferred
async def test_missing_attributes_mean_transport_write_and_one_log_line(monkeypatch):
    from twistedchat.server import net

    monkeypatch.setattr(net, "_direct_write_problem", None)
    monkeypatch.setattr(fastpath, "direct_write_problem", lambda: "offset is gone")
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        server = RunningServer(ServerConfig(name="test.server"))
        RunningServer(ServerConfig(name="second.server"))  # a second factory logs nothing more
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [formatEvent(e) for e in events if "offset is gone" in formatEvent(e)]
    assert len(warnings) == 1
    await server.start()
    try:
        client = await register(server, "fallback")
        (connection,) = server.factory.connections
        assert connection.pipeline.write == connection.write
        client.send("PING :through transport.write")
        await client.expect("PONG", None, "through transport.write")
        client.close()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_no_direct_write_setting_uses_transport_write():
    server = RunningServer(ServerConfig(name="test.server", direct_write=False))
    await server.start()
    try:
        client = await register(server, "plain")
        (connection,) = server.factory.connections
        assert connection.pipeline.write == connection.write
        client.close()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_fast_path_never_writes_plaintext_after_start_tls(chat_server, tmp_path):
    """After an in-place startTLS the raw socket carries ciphertext only: replies go through TLS."""
    key, cert = write_self_signed(tmp_path)
    client = await register(chat_server, "upgrader")
    (connection,) = chat_server.factory.connections
    server_tls = ssl.PrivateCertificate.loadPEM(key.read_text() + cert.read_text()).options()
    connection.transport.startTLS(server_tls)
    client.transport.startTLS(
        ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(cert.read_text())))
    for token in ("secret", "still secret"):
        client.send(f"PING :{token}")
        await client.expect("PONG", None, token)
    assert interfaces.ISSLTransport.providedBy(connection.transport)
    client.close()


async def three_members(server: RunningServer) -> list[LineClient]:
    clients = [await register(server, nick) for nick in ("alice", "bob", "carol")]
    for client in clients:
        client.send("JOIN #c")
        await client.expect("366")
    for client in clients:
        await client.sync()
    return clients


@pytest_twisted.ensureDeferred
async def test_one_transmit_raising_once_strands_nobody(chat_server, monkeypatch):
    """bob's write raises once inside the flush: carol, after him in it, still gets the line,
    and bob gets it on the next turn."""
    alice, bob, carol = await three_members(chat_server)
    link = chat_server.factory.core.state.find_user("bob").link
    transmit = link.transmit
    failures: list[bytes] = []

    def flaky(data: bytes) -> None:
        if not failures:
            failures.append(data)
            raise RuntimeError("transmit bug")
        transmit(data)

    monkeypatch.setattr(link, "transmit", flaky)
    alice.send("PRIVMSG #c :hello")
    await carol.expect("PRIVMSG", "#c", "hello")
    await bob.expect("PRIVMSG", "#c", "hello")
    assert failures
    alice.send("PRIVMSG #c :again")
    for client in (bob, carol):
        await client.expect("PRIVMSG", "#c", "again")
    for client in (alice, bob, carol):
        client.close()


@pytest_twisted.ensureDeferred
async def test_a_transmit_that_keeps_raising_drops_only_that_client(chat_server, monkeypatch):
    alice, bob, carol = await three_members(chat_server)
    link = chat_server.factory.core.state.find_user("bob").link

    def broken(data: bytes) -> None:
        raise RuntimeError("transmit bug")

    monkeypatch.setattr(link, "transmit", broken)
    alice.send("PRIVMSG #c :hello")
    await carol.expect("PRIVMSG", "#c", "hello")
    await bob.wait_closed()
    await carol.expect("QUIT", source="bob!")
    alice.send("PRIVMSG #c :after")
    await carol.expect("PRIVMSG", "#c", "after")
    for client in (alice, carol):
        client.close()


# -- the line pipeline for other transports ----------------------------------------------------------


class MessageOutlet:
    """A message-based transport (as WebSocket will be): one message per line."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int | None:
        self.messages.extend(split_lines(data))
        return None

    def abort(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


def test_a_message_transport_reuses_the_pipeline_one_message_per_line():
    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="ws.test"), clock=clock)
    web, other = MessageOutlet(), MessageOutlet()
    pipeline = factory.open_pipeline("192.0.2.1", web)
    friend = factory.open_pipeline("192.0.2.2", other)
    for line in (b"NICK friend", b"USER friend 0 * :Friend", b"JOIN #c"):
        friend.line_received(line)
    for line in (b"NICK web", b"USER web 0 * :Web", b"JOIN #c", b"PRIVMSG #c :\xff", b"QUIT :bye"):
        pipeline.line_received(line)
    clock.advance(0)
    assert web.messages and all(b"\r" not in m and b"\n" not in m for m in web.messages)
    commands = [parse(message).command for message in web.messages]
    assert commands.index("353") < commands.index("366") < commands.index("FAIL")
    assert commands[-1] == "ERROR" and web.closed
    relayed = [parse(message) for message in other.messages]
    assert [m.command for m in relayed][-2:] == ["JOIN", "QUIT"]
