"""Fan-out writes straight to idle sockets and falls back to Twisted's buffer: order never breaks."""

from __future__ import annotations

import socket

import pytest_twisted
from conftest import RunningServer
from helpers import TIMEOUT, LineClient, wait_until
from twisted.internet import protocol, reactor

from twistedchat.server.config import ServerConfig

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
