"""A hostile client against the real daemon over loopback: each test is one way a client attacked it.

Raw lines (bytes as sent, CR and NUL included) go through the real ``ChatConnection`` and its line
pipeline; every wait is bounded and nothing sleeps. Log events are collected so a test can say "no
traceback was logged".
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from conftest import RunningServer
from helpers import (
    LineClient,
    break_command,
    connect,
    listener_for,
    register,
    tracebacks,
    wait_until,
    write_self_signed,
)
from twisted.internet import endpoints, reactor, ssl
from twisted.logger import formatEvent

from twistedchat.server.config import ServerConfig
from twistedchat.server.fastpath import pending_bytes
from twistedchat.server.net import ChatFactory

ensure = pytest_twisted.ensureDeferred


@pytest_twisted.async_yield_fixture
async def hostile_server(request):
    settings = getattr(request, "param", {})
    server = RunningServer(ServerConfig(name="hostile.server", **settings))
    await server.start()
    yield server
    await server.stop()


async def tagged_client(server: RunningServer, nick: str):
    """A registered client that asked for ``message-tags``."""
    client = await connect(server.client_endpoint)
    client.nick = nick
    client.send("CAP LS 302", "CAP REQ :message-tags", f"NICK {nick}", f"USER {nick} 0 * :{nick}",
                "CAP END")
    await client.expect("001")
    await client.expect(where=lambda m: m.command in ("376", "422"))
    return client


# -- issue 8 item 1: --sendq on plain TCP ------------------------------------------------------------

SENDQ = 256 * 1024


@pytest.mark.parametrize("hostile_server", [{"sendq": SENDQ, "flood_rate": 0}], indirect=True)
@ensure
async def test_stalled_reader_is_dropped_and_its_backlog_stays_bounded(hostile_server, log_events):
    """A member that never reads while a talker sends 24 MB to its channel: dropped at sendq.

    The bound is read from the server's own transport buffer for that client after every
    megabyte, so it does not depend on timing: without the limit it grows by a megabyte a batch.
    """
    factory = hostile_server.factory
    before = set(factory.connections)
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    try:
        stalled.connect_ex((hostile_server.host, hostile_server.port))
        await wait_until(lambda: set(factory.connections) - before, "the stalled client is accepted")
        (conn,) = set(factory.connections) - before
        # A small kernel buffer on the server's side too: the backlog then sits in user space.
        conn.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        stalled.send(b"NICK stalled\r\nUSER s 0 * :S\r\nJOIN #flood\r\n")
        talker = await register(hostile_server, "talker")
        talker.send("JOIN #flood")
        await talker.expect("366")
        await wait_until(lambda: conn.user is not None and conn.user.channels, "stalled joined")
        batch = ["PRIVMSG #flood :" + "z" * 480] * 2000  # about 1 MB
        largest = 0
        for _ in range(24):
            talker.send(*batch)
            await talker.sync()
            if conn.transport.connected:
                largest = max(largest, pending_bytes(conn.transport))
                assert largest <= SENDQ, f"{largest} bytes held for a client that never reads"
        await wait_until(lambda: conn not in factory.connections, "the stalled client is dropped")
        assert factory.core.state.find_user("stalled") is None
        assert any("send queue exceeded" in formatEvent(e) for e in log_events)
        talker.send("PING :still here")
        await talker.expect("PONG", None, "still here")
        talker.close()
    finally:
        stalled.close()
    assert not tracebacks(log_events)


# -- issue 8 item 3: CR and NUL inside a line -------------------------------------------------------


@ensure
async def test_lone_cr_in_topic_is_refused_and_the_channel_stays_usable(hostile_server,
                                                                       log_events):
    owner = await register(hostile_server, "owner")
    owner.send("JOIN #c")
    await owner.expect("366")
    owner.send(b"TOPIC #c :in\rnocent")
    fail = await owner.expect("FAIL")
    assert fail.params[:2] == ("TOPIC", "INVALID_MESSAGE")
    guest = await register(hostile_server, "guest")
    guest.send("JOIN #c")
    await guest.expect("366")
    guest.send("LIST")
    await guest.expect("323")
    assert not [m for m in guest.messages if m.command == "400"]
    assert not tracebacks(log_events)
    owner.close()
    guest.close()


TEXT_COMMANDS = [
    "NICK a{}b",
    "USER u 0 * :real{}name",
    "AWAY :gone{}away",
    "TOPIC #c :top{}ic",
    "PRIVMSG #c :hi{}there",
    "NOTICE #c :hi{}there",
    "PART #c :bye{}now",
    "KICK #c owner :out{}now",
    "QUIT :bye{}now",
]


@pytest.mark.parametrize("character", ["\r", "\0"], ids=["CR", "NUL"])
@pytest.mark.parametrize("template", TEXT_COMMANDS)
@ensure
async def test_cr_and_nul_are_refused_in_every_command_that_stores_text(hostile_server,
                                                                        log_events, template,
                                                                        character):
    client = await register(hostile_server, "owner")
    client.send("JOIN #c")
    await client.expect("366")
    line = template.format(character)
    client.send(line.encode())
    fail = await client.expect("FAIL")
    assert fail.params[:2] == (line.split()[0], "INVALID_MESSAGE")
    client.send("PING :alive")
    await client.expect("PONG", None, "alive")
    client.send("WHOIS owner")
    await client.expect("318")
    assert not tracebacks(log_events)
    client.close()


@ensure
async def test_nick_with_cr_before_registration_logs_no_traceback(hostile_server, log_events):
    client = await connect(hostile_server.client_endpoint)
    client.send(b"NICK a\rb")
    fail = await client.expect("FAIL")
    assert fail.params[:2] == ("NICK", "INVALID_MESSAGE")
    client.send("NICK ab", "USER ab 0 * :AB")
    await client.expect("001")
    assert not tracebacks(log_events)
    client.close()


# -- issue 8 item 4: nothing raises out of the protocol or a timed call -----------------------------


@pytest.mark.parametrize("line", [b":\xff", b"\x00\xff", b"@a=b :\xff", b"\xff PRIVMSG",
                                  b":x \x00", b"@\xff", b":\xff\x00 PING x"])
@ensure
async def test_broken_command_words_are_answered_not_raised(hostile_server, log_events, line):
    client = await register(hostile_server, "prober")
    client.send(line)
    fail = await client.expect("FAIL")
    assert fail.params[0] in ("*", "PING") and fail.params[1] in ("INVALID_UTF8", "INVALID_MESSAGE")
    client.send("PING :alive")
    await client.expect("PONG", None, "alive")
    assert not tracebacks(log_events)
    client.close()


@pytest.mark.parametrize("hostile_server", [{"flood_burst": 2, "flood_rate": 50}], indirect=True)
@ensure
async def test_broken_line_delayed_by_the_flood_limit_does_not_wedge(hostile_server, log_events):
    client = await register(hostile_server, "delayed")
    client.send(*[b"PING :burst"] * 6, b":\xff", b"\x00\xff", b"PING :after")
    await client.expect("PONG", None, "after")
    fails = [m for m in client.messages if m.command == "FAIL"]
    assert len(fails) == 2
    assert not tracebacks(log_events)
    client.close()


@pytest.mark.parametrize("hostile_server", [{"flood_burst": 1, "flood_rate": 50}], indirect=True)
@ensure
async def test_handler_error_in_a_delayed_line_is_answered_once(hostile_server, log_events,
                                                                monkeypatch):
    break_command(monkeypatch, hostile_server.factory.core, "TIME")
    client = await register(hostile_server, "victim")
    client.send("PING :one", "PING :two", "TIME", "PING :after")
    await client.expect("PONG", None, "after")
    errors = [m for m in client.messages if m.command == "400"]
    assert len(errors) == 1 and errors[0].params[1] == "TIME"
    failures = [e for e in log_events if "log_failure" in e]
    assert len(failures) == 1 and failures[0]["log_failure"].check(RuntimeError)
    client.close()


@ensure
async def test_an_overlong_line_costs_only_itself(hostile_server):
    """Twisted's stock framing drops the rest of a read after a long line; ours reads on."""
    client = await register(hostile_server, "long")
    client.send(b"PRIVMSG long :" + b"x" * 6000 + b"\r\nPING :next")
    await client.expect("417")
    await client.expect("PONG", None, "next")
    client.send(b"PRIVMSG long :" + b"y" * 600)  # over 512 bytes, under the framing limit
    await client.expect("417")
    client.send("PING :still")
    await client.expect("PONG", None, "still")
    client.close()


# -- issue 8 item 5: tag keys ------------------------------------------------------------------------


@ensure
async def test_cr_in_a_client_tag_key_is_never_relayed(hostile_server, log_events):
    sender = await tagged_client(hostile_server, "sender")
    receiver = await tagged_client(hostile_server, "receiver")
    for client in (sender, receiver):
        client.send("JOIN #c")
        await client.expect("366")
    await sender.sync()
    receiver.skip()
    sender.send(b"@+y=ok;+x\rERROR PRIVMSG #c :hello")
    fail = await sender.expect("FAIL")
    assert fail.params[:2] == ("PRIVMSG", "INVALID_MESSAGE")
    sender.send("@+y=ok;+bad!key=1;+ex.example/k-2=v;+=empty PRIVMSG #c :tagged")
    message = await receiver.expect("PRIVMSG", "#c", "tagged")
    client_tags = {key: value for key, value in message.tags.items() if key.startswith("+")}
    assert client_tags == {"+y": "ok", "+ex.example/k-2": "v"}
    await receiver.sync()
    assert not [raw for raw in receiver.raw if b"\r" in raw or b"bad!key" in raw]
    assert not [m for m in receiver.messages if m.command == "ERROR"]
    assert not tracebacks(log_events)
    sender.close()
    receiver.close()


@pytest.mark.parametrize("engine", ["stdlib", "twisted"])
@ensure
async def test_stalled_reader_over_tls_is_dropped_at_sendq(tmp_path, log_events, engine):
    """The same rule on TLS (either engine): the stdlib engine counts the ciphertext Twisted
    holds, Twisted's what was written since the transport paused."""
    key, cert = write_self_signed(tmp_path)
    factory = ChatFactory(ServerConfig(name="hostile.server", sendq=SENDQ, flood_rate=0,
                                       tls_engine=engine))
    endpoint, wrapped = listener_for(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}", factory)
    port = await endpoint.listen(wrapped)
    address = ("127.0.0.1", port.getHost().port)
    context = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(cert.read_text()))

    async def tls_client(nick: str) -> LineClient:
        client = LineClient()
        client.nick = nick
        await endpoints.connectProtocol(endpoints.SSL4ClientEndpoint(reactor, *address, context),
                                        client)
        client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}", "JOIN #flood")
        await client.expect("366")
        return client

    try:
        stalled = await tls_client("stalled")
        talker = await tls_client("talker")
        stalled.transport.pauseProducing()  # stops reading
        batch = ["PRIVMSG #flood :" + "z" * 480] * 2000  # about 1 MB
        for _ in range(8):
            talker.send(*batch)
            await talker.sync()
            if factory.core.state.find_user("stalled") is None:
                break
        await wait_until(lambda: factory.core.state.find_user("stalled") is None,
                         "the stalled TLS client is dropped")
        assert any("send queue exceeded" in formatEvent(e) for e in log_events)
        talker.close()
        stalled.transport.resumeProducing()
        stalled.close()
    finally:
        await factory.shutdown()
        await port.stopListening()
    assert not tracebacks(log_events)
