"""The daemon under pressure: timeouts, floods, slow readers, connection limits, handler errors, SIGTERM.

Time-driven rules (ping and registration timeouts, the flood bucket's delay) run on a
``task.Clock`` with ``StringTransport`` connections, so no test waits for real seconds. What needs
real sockets (a reader that stops reading, per-IP refusals, the flood disconnect seen by another
client, SIGTERM to ``twistd``) runs over loopback against the real daemon.
"""

from __future__ import annotations

import signal
import socket

import pytest
import pytest_twisted
from conftest import RunningServer
from helpers import (
    DaemonProcess,
    FakeClient,
    advance,
    break_command,
    clocked_factory,
    connect,
    register,
    wait_until,
)
from twisted.internet import task
from twisted.logger import formatEvent, globalLogPublisher

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory

ensure = pytest_twisted.ensureDeferred


# -- StringTransport + task.Clock ----------------------------------------------------------------


def test_registration_timeout():
    factory, clock = clocked_factory(registration_timeout=10)
    lazy = FakeClient(factory, clock)
    lazy.send("NICK lazy")  # never sends USER
    quick = FakeClient(factory, clock, port=40001)
    quick.send("NICK quick", "USER quick 0 * :Quick")
    advance(clock, 9)
    assert not lazy.dropped
    advance(clock, 2)
    assert lazy.dropped
    error = [m for m in lazy.received() if m.command == "ERROR"]
    assert error and "Registration timed out" in error[0].params[0]
    assert not quick.dropped
    factory.stopFactory()


def test_ping_timeout_and_pong_keeps_alive():
    factory, clock = clocked_factory(ping_interval=30, ping_timeout=20)
    alive = FakeClient(factory, clock)
    silent = FakeClient(factory, clock, port=40001)
    alive.send("NICK alive", "USER alive 0 * :A")
    silent.send("NICK silent", "USER silent 0 * :S")
    alive.received(), silent.received()
    advance(clock, 31)
    for client in (alive, silent):
        pings = [m for m in client.received() if m.command == "PING"]
        assert [p.params for p in pings] == [("clock.server",)]
    alive.send("PONG :clock.server")
    # The sweep runs every ping_interval / 4 seconds, so the drop comes within one period of 50 s.
    advance(clock, 25)
    assert silent.dropped and not alive.dropped
    error = [m for m in silent.received() if m.command == "ERROR"]
    assert "Ping timeout" in error[0].params[0]
    # The one who answered is pinged again after another quiet interval, and survives if it answers.
    advance(clock, 15)
    assert [m.command for m in alive.received()] == ["PING"]
    alive.send("PONG :clock.server")
    advance(clock, 25)
    assert not alive.dropped
    factory.stopFactory()


def test_flood_burst_is_delayed_not_lost():
    factory, clock = clocked_factory(flood_burst=5, flood_rate=2)
    flooder = FakeClient(factory, clock)
    flooder.send("NICK flooder", "USER f 0 * :F")
    listener = FakeClient(factory, clock, port=40001)
    listener.send("NICK listener", "USER l 0 * :L")
    clock.advance(10)  # refill the flooder's bucket after registering
    listener.received()
    flooder.send(*(f"PRIVMSG listener :line {n}" for n in range(15)))
    now = [m.params[-1] for m in listener.received() if m.command == "PRIVMSG"]
    assert now == [f"line {n}" for n in range(5)]  # the burst goes through at once
    advance(clock, 2.5)
    later = [m.params[-1] for m in listener.received() if m.command == "PRIVMSG"]
    assert later == [f"line {n}" for n in range(5, 10)]  # then 2 lines a second
    advance(clock, 3)
    rest = [m.params[-1] for m in listener.received() if m.command == "PRIVMSG"]
    assert rest == [f"line {n}" for n in range(10, 15)]
    assert not flooder.dropped
    factory.stopFactory()


def test_sendq_overflow_on_a_paused_transport():
    """The sendq rule alone: once the transport asks us to pause, only ``sendq`` bytes more."""
    factory, clock = clocked_factory(sendq=2000, flood_rate=0)
    reader = FakeClient(factory, clock)
    talker = FakeClient(factory, clock, port=40001)
    reader.send("NICK reader", "USER r 0 * :R")
    talker.send("NICK talker", "USER t 0 * :T")
    reader.protocol.pauseProducing()  # what a full socket buffer makes Twisted do
    for n in range(3):
        talker.send(f"PRIVMSG reader :{'x' * 400} {n}")
    assert not reader.dropped
    talker.send(*(f"PRIVMSG reader :{'x' * 400} {n}" for n in range(3, 8)))
    assert reader.dropped
    assert not talker.dropped
    talker.send("PING :still")
    assert [m.command for m in talker.received()][-1] == "PONG"
    factory.stopFactory()


def test_sendq_counts_from_the_first_pause_not_the_last():
    """Twisted calls pauseProducing on every write while its buffer is full; that must not reset
    the count of unsent bytes, or a client that never reads is never dropped."""
    factory, clock = clocked_factory(sendq=2000, flood_rate=0)
    reader = FakeClient(factory, clock)
    talker = FakeClient(factory, clock, port=40001)
    reader.send("NICK reader", "USER r 0 * :R")
    talker.send("NICK talker", "USER t 0 * :T")
    for n in range(8):
        reader.protocol.pauseProducing()  # again and again, as a full transport does
        talker.send(f"PRIVMSG reader :{'x' * 400} {n}")
    assert reader.dropped
    assert not talker.dropped
    factory.stopFactory()


def registered_with_one_token(**settings) -> tuple[ChatFactory, task.Clock, FakeClient]:
    """A registered client whose flood bucket (burst 1) has just spent its token."""
    factory, clock = clocked_factory(flood_burst=1, flood_queue=100, **settings)
    client = FakeClient(factory, clock)
    client.send("NICK flooder", "USER f 0 * :F")
    clock.advance(10)  # the delayed USER runs at the end of these 10 s and spends the token
    client.received()
    return factory, clock, client


def test_flood_queue_is_bounded_in_bytes_as_well_as_lines():
    """Tagged lines of 4 KB fill the byte bound (flood-queue x 512) long before the line bound."""
    factory, clock, flooder = registered_with_one_token(flood_rate=1)
    tagged = f"@+big={'t' * 3900} PRIVMSG flooder :hi"
    largest = 0
    for _ in range(30):
        flooder.send(tagged)
        pipeline = getattr(flooder.protocol, "pipeline", None)
        if pipeline is not None:
            largest = max(largest, pipeline.queued_bytes)
        if flooder.dropped:
            break
    assert flooder.dropped
    errors = [m for m in flooder.received() if m.command == "ERROR"]
    assert errors and "Excess Flood" in errors[0].params[0]
    assert largest <= 100 * 512
    factory.stopFactory()


def test_lines_are_checked_before_they_wait_in_the_flood_queue():
    """60 KB lines sent while the bucket is empty never sit in the queue; their 417s come in order."""
    factory, clock, client = registered_with_one_token(flood_rate=2)
    lines = [b"PING :first"] + [b"PRIVMSG flooder :" + b"x" * 60_000] * 20 + [b"\xff\xfe", b"PING :last"]
    client.protocol.dataReceived(b"".join(line + b"\r\n" for line in lines))
    queued = client.protocol.pipeline.queued_bytes
    assert queued < 2000, f"{queued} bytes queued for 1.2 MB of refused lines"
    advance(clock, 12)
    replies = [m.command for m in client.received()]
    assert replies == ["PONG"] + ["417"] * 20 + ["FAIL", "PONG"]
    assert not client.dropped
    factory.stopFactory()


# -- real loopback --------------------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def limited_server(request):
    settings = getattr(request, "param", {})
    server = RunningServer(ServerConfig(name="limits.server", **{"cloak_hosts": False, **settings}))
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("limited_server", [{"flood_burst": 5, "flood_rate": 1,
                                             "flood_queue": 20}], indirect=True)
@ensure
async def test_sustained_flood_is_disconnected_others_go_on(limited_server):
    flooder = await register(limited_server, "flooder")
    alice = await register(limited_server, "alice")
    bob = await register(limited_server, "bob")
    for client in (flooder, alice):
        client.send("JOIN #shared")
        await client.expect("366")
    flooder.send(*(f"PRIVMSG bob :flood {n}" for n in range(200)))
    error = await flooder.expect("ERROR")
    assert error.params[0] == "Closing Link: 127.0.0.1 (Excess Flood)"
    await flooder.wait_closed()
    await alice.expect("QUIT", "Excess Flood", source="flooder!")
    alice.send("PRIVMSG bob :are you ok?")
    await bob.expect("PRIVMSG", "bob", "are you ok?", source="alice!")
    received = [m.params[-1] for m in bob.messages if m.command == "PRIVMSG"]
    assert received[0] == "flood 0" and len(received) <= 30  # the burst, nowhere near 200
    for client in (alice, bob):
        client.close()


@pytest.mark.parametrize("limited_server", [{"flood_burst": 5, "flood_rate": 100,
                                             "flood_queue": 100}], indirect=True)
@ensure
async def test_burst_over_loopback_arrives_complete_and_in_order(limited_server):
    sender = await register(limited_server, "sender")
    receiver = await register(limited_server, "receiver")
    sender.send(*(f"PRIVMSG receiver :burst {n}" for n in range(60)))
    last = await receiver.expect("PRIVMSG", "receiver", "burst 59")
    assert last.source.startswith("sender!")
    got = [m.params[-1] for m in receiver.messages if m.command == "PRIVMSG"]
    assert got == [f"burst {n}" for n in range(60)]
    assert not sender.is_closed
    sender.close()
    receiver.close()


@pytest.mark.parametrize("limited_server", [{"sendq": 32 * 1024, "flood_rate": 0}],
                         indirect=True)
@ensure
async def test_slow_consumer_is_dropped_at_sendq(limited_server):
    """A client with a tiny receive buffer that never reads is cut off; the others are served."""
    factory = limited_server.factory
    before = set(factory.connections)
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    try:
        slow.connect_ex((limited_server.host, limited_server.port))
        await wait_until(lambda: set(factory.connections) - before, "the slow client is accepted")
        (conn,) = set(factory.connections) - before
        # Keep the server's kernel send buffer small too, so the test moves ~150 KB, not megabytes.
        conn.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        slow.send(b"NICK slow\r\nUSER slow 0 * :Slow\r\nJOIN #flood\r\n")
        observer = await register(limited_server, "observer")
        observer.send("JOIN #flood")
        await observer.expect("366")
        talker = await register(limited_server, "talker")
        talker.send("JOIN #flood")
        await talker.expect("366")
        assert conn.user is not None and conn.user.nick == "slow"
        text = "z" * 400
        for batch in range(10):
            talker.send(*(f"PRIVMSG #flood :{batch}-{n} {text}" for n in range(100)))
            await observer.expect("PRIVMSG", "#flood", where=lambda m, b=batch: m.params[1]
                                  .startswith(f"{b}-99 "), timeout=10)
            if conn not in factory.connections:
                break
        await wait_until(lambda: conn not in factory.connections, "the slow client is dropped")
        assert factory.core.state.find_user("slow") is None
        assert any("send queue exceeded" in formatEvent(e) for e in events)
        await observer.sync()
        quits = [m for m in observer.messages if m.command == "QUIT" and m.source.startswith("slow!")]
        assert len(quits) == 1 and quits[0].params[0]
        # The server still serves the others.
        talker.send("PRIVMSG #flood :after")
        await observer.expect("PRIVMSG", "#flood", "after")
        observer.close()
        talker.close()
    finally:
        globalLogPublisher.removeObserver(events.append)
        slow.close()


@pytest.mark.parametrize("limited_server", [{"flood_rate": 0}], indirect=True)
@ensure
async def test_backed_up_client_that_quits_is_closed_cleanly(limited_server, monkeypatch):
    """A client whose output was paused, then QUITs, gets all its data and a clean close (FIN).

    The server must not wait for the close grace period and then reset the connection.
    """
    from twistedchat.server import connection as server_module

    monkeypatch.setattr(server_module, "CLOSE_GRACE", 2.0)
    factory = limited_server.factory
    before = set(factory.connections)
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    try:
        slow.connect_ex((limited_server.host, limited_server.port))
        await wait_until(lambda: set(factory.connections) - before, "the client is accepted")
        (conn,) = set(factory.connections) - before
        conn.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        slow.send(b"NICK backed\r\nUSER b 0 * :B\r\nJOIN #busy\r\n")
        talker = await register(limited_server, "talker")
        talker.send("JOIN #busy")
        await talker.expect("366")
        talker.send(*(f"PRIVMSG #busy :{n} {'q' * 400}" for n in range(300)))
        await wait_until(lambda: conn.pipeline.output_paused, "the transport pauses the output")
        slow.send(b"QUIT :done\r\n")
        received = bytearray()

        def drained() -> str | None:
            try:
                while True:
                    chunk = slow.recv(65536)
                    if not chunk:
                        return "closed"
                    received.extend(chunk)
            except BlockingIOError:
                return None
            except ConnectionResetError:
                return "reset"

        how = await wait_until(drained, "the server closes the connection", timeout=10)
        assert received.rstrip().endswith(b"ERROR :Closing Link: 127.0.0.1 (Quit: done)")
        assert how == "closed"
        talker.close()
    finally:
        slow.close()


@pytest.mark.parametrize("limited_server", [{"max_per_ip": 2}], indirect=True)
@ensure
async def test_per_ip_limit_refuses_politely(limited_server):
    first = await register(limited_server, "first")
    second = await register(limited_server, "second")
    third = await connect(limited_server.client_endpoint)
    error = await third.expect("ERROR")
    assert error.params[0] == "Closing Link: 127.0.0.1 (Too many connections from your address)"
    await third.wait_closed()
    first.close()
    await wait_until(lambda: len(limited_server.factory.connections) == 1, "first is gone")
    fourth = await register(limited_server, "fourth")
    for client in (second, fourth):
        client.close()


@pytest.mark.parametrize("limited_server", [{"max_clients": 2, "max_per_ip": 0}],
                         indirect=True)
@ensure
async def test_max_clients_refuses_politely(limited_server):
    clients = [await register(limited_server, nick) for nick in ("one", "two")]
    extra = await connect(limited_server.client_endpoint)
    error = await extra.expect("ERROR")
    assert "Server is full" in error.params[0]
    await extra.wait_closed()
    clients[0].send("PING :ok")
    await clients[0].expect("PONG")
    for client in clients:
        client.close()


@ensure
async def test_handler_error_is_logged_and_answered(chat_server, monkeypatch):
    break_command(monkeypatch, chat_server.factory.core, "TIME")
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        client = await register(chat_server, "victim")
        client.send("TIME")
        reply = await client.expect("400", "victim", "TIME")
        assert "logged" in reply.params[-1]
        client.send("PING :alive")
        await client.expect("PONG", None, "alive")
    finally:
        globalLogPublisher.removeObserver(events.append)
    failures = [e for e in events if "log_failure" in e]
    assert failures and failures[0]["log_failure"].check(RuntimeError)
    assert failures[0]["command"] == "TIME"
    client.close()


@ensure
async def test_sigterm_tells_clients_and_exits_zero(tmp_path):
    daemon = DaemonProcess(tmp_path, "--name", "term.server")
    try:
        await daemon.wait_listening()
        client = await register(daemon, "stayer")
        client.send("JOIN #lobby")
        await client.expect("366")
        daemon.process.send_signal(signal.SIGTERM)
        error = await client.expect("ERROR", timeout=10)
        assert "shutting down" in error.params[0].lower()
        await client.wait_closed()
        await wait_until(lambda: daemon.process.poll() is not None, "twistd exits", timeout=15)
        assert daemon.process.returncode == 0, daemon.log_text()
    finally:
        daemon.stop()
