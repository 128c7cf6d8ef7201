"""The standard-library TLS engine (twistedchat.server.tls): choosing it, the handshake, data both
ways, closing, client certificates, gathered writes; Twisted's TLS as the fallback."""

from __future__ import annotations

import hashlib
import socket
import ssl as stdlib_ssl

import pytest
import pytest_twisted
from helpers import LineClient, listener_for, tracebacks, wait_until, write_self_signed
from twisted.internet import endpoints, reactor, ssl, task
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from zope.interface import implementer

from twistedchat.server import tls
from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory
from twistedchat.server.tap import Options


def describe(key, cert, extra: str = "") -> str:
    return f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}{extra}"


def test_split_description_follows_twisteds_escapes():
    args, kwargs = tls.split_description(r"ssl:6697:interface=\:\:1:privateKey=/a\:b/key.pem")
    assert args == ["ssl", "6697"]
    assert kwargs == {"interface": "::1", "privateKey": "/a:b/key.pem"}


def test_engine_choice_and_fallback(tmp_path):
    key, cert = write_self_signed(tmp_path)
    factory = ChatFactory(ServerConfig())
    _, wrapped = listener_for(reactor, describe(key, cert), factory)
    assert isinstance(wrapped, tls.TLSFactory) and wrapped.wrapped is factory
    # An option only Twisted's TLS has: that listener falls back to it.
    _, wrapped = listener_for(reactor, describe(key, cert, ":sslmethod=SSLv23_METHOD"), factory)
    assert wrapped is factory
    _, wrapped = listener_for(reactor, "tcp:0:interface=127.0.0.1", factory)
    assert wrapped is factory
    twisted_factory = ChatFactory(ServerConfig(tls_engine="twisted"))
    _, wrapped = listener_for(reactor, describe(key, cert), twisted_factory)
    assert wrapped is twisted_factory


def test_options_check_the_engine_and_the_description(tmp_path):
    key, cert = write_self_signed(tmp_path)
    options = Options()
    options.parseOptions(["--port", describe(key, cert), "--tls-write-interval", "5"])
    config = options.config()
    assert config.tls_engine == "stdlib" and config.tls_write_interval_ms == 5
    from twisted.python import usage

    with pytest.raises(usage.UsageError, match="tls-engine"):
        Options().parseOptions(["--tls-engine", "gnutls"])
    with pytest.raises(usage.UsageError, match="port"):
        Options().parseOptions(["--port", f"ssl:0:privateKey={tmp_path}/missing.pem"])
    with pytest.raises(usage.UsageError, match="port"):
        Options().parseOptions(["--port", f"ssl:privateKey={key}"])


async def tls_client(address, cert, nick: str, client_cert=None) -> LineClient:
    context = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(cert.read_text()),
                                      clientCertificate=client_cert)
    client = LineClient()
    client.nick = nick
    await endpoints.connectProtocol(endpoints.SSL4ClientEndpoint(reactor, *address, context),
                                    client)
    client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    await client.expect("001")
    return client


async def listen(factory: ChatFactory, description: str):
    endpoint, wrapped = listener_for(reactor, description, factory)
    port = await endpoint.listen(wrapped)
    return port, ("127.0.0.1", port.getHost().port)


@pytest.mark.parametrize("interval", [0.0, 20.0])
@pytest_twisted.ensureDeferred
async def test_data_both_ways_and_close(tmp_path, log_events, interval):
    """Two TLS clients talk through the stdlib engine; QUIT closes with the ERROR line first."""
    key, cert = write_self_signed(tmp_path)
    factory = ChatFactory(ServerConfig(name="tls.test", flood_rate=0,
                                       tls_write_interval_ms=interval))
    port, address = await listen(factory, describe(key, cert))
    try:
        alice = await tls_client(address, cert, "alice")
        bob = await tls_client(address, cert, "bob")
        (connection,) = [c for c in factory.connections if c.user.nick == "alice"]
        assert isinstance(connection.transport, tls.TLSConnection)
        for who in (alice, bob):
            who.send("JOIN #tls")
            await who.expect("366")
        lines = [f"PRIVMSG #tls :line {n} " + "x" * 400 for n in range(200)]  # ~80 KB: records
        alice.send(*lines)
        for n in range(200):
            await bob.expect("PRIVMSG", "#tls", f"line {n} " + "x" * 400)
        bob.send("PRIVMSG alice :back")
        await alice.expect("PRIVMSG", "alice", "back")
        alice.send("QUIT :bye")
        await alice.expect("ERROR")
        await alice.wait_closed()
        await bob.expect("QUIT", "Quit: bye")
        bob.close()
        await bob.wait_closed()
        await wait_until(lambda: not factory.connections, "both are gone")
    finally:
        await port.stopListening()
    assert not tracebacks(log_events)


@pytest_twisted.ensureDeferred
async def test_client_certificate_fingerprint(tmp_path):
    """With clientCA=, a client's certificate fingerprint is known server-side; without one, None."""
    key, cert = write_self_signed(tmp_path)
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    client_key, client_cert = write_self_signed(client_dir)
    factory = ChatFactory(ServerConfig(name="tls.test"))
    port, address = await listen(factory, describe(key, cert, f":clientCA={client_cert}"))
    try:
        identity = ssl.PrivateCertificate.loadPEM(client_key.read_text() + client_cert.read_text())
        with_cert = await tls_client(address, cert, "certified", identity)
        without = await tls_client(address, cert, "anonymous")
        by_nick = {c.user.nick: c for c in factory.connections}
        der = stdlib_ssl.PEM_cert_to_DER_cert(client_cert.read_text())
        assert tls.peer_certificate_fingerprint(by_nick["certified"].transport) == \
            hashlib.sha256(der).hexdigest()
        assert tls.peer_certificate_fingerprint(by_nick["anonymous"].transport) is None
        for client in (with_cert, without):
            client.close()
            await client.wait_closed()
    finally:
        await factory.shutdown()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_fingerprint_on_twisteds_tls_and_plain_tcp(tmp_path):
    """The same helper reads Twisted's TLS transport (no client certificate asked: None) and a
    plain TCP one (not TLS: None)."""
    key, cert = write_self_signed(tmp_path)
    factory = ChatFactory(ServerConfig(name="tls.test", tls_engine="twisted"))
    port, address = await listen(factory, describe(key, cert))
    try:
        client = await tls_client(address, cert, "twisted")
        (connection,) = factory.connections
        assert not isinstance(connection.transport, tls.TLSConnection)
        assert tls.peer_certificate_fingerprint(connection.transport) is None
        assert tls.peer_certificate_fingerprint(StringTransport()) is None
        client.close()
        await client.wait_closed()
    finally:
        await factory.shutdown()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_garbage_instead_of_a_handshake_is_cut_without_a_traceback(tmp_path, log_events):
    key, cert = write_self_signed(tmp_path)
    factory = ChatFactory(ServerConfig(name="tls.test"))
    port, address = await listen(factory, describe(key, cert))
    sock = socket.create_connection(address)
    try:
        sock.sendall(b"NICK plaintext\r\nUSER x 0 * :x\r\n")
        await wait_until(lambda: any("TLS error" in formatEvent(e) for e in log_events),
                         "the server logs the TLS error")
        await wait_until(lambda: not factory.connections, "the connection is cut")
    finally:
        sock.close()
        await port.stopListening()
    assert not tracebacks(log_events)


# -- gathered writes, on an in-memory handshake ----------------------------------------------------

@implementer(IHandshakeListener)
class Collect(Protocol):
    """The wrapped protocol: what the client sent, and whether the handshake finished."""

    def __init__(self) -> None:
        self.received = b""
        self.handshaken = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def handshakeCompleted(self) -> None:
        self.handshaken = True


class MemoryPeer:
    """A TLS client on memory BIOs talking to a TLSConnection over a StringTransport."""

    def __init__(self, server: tls.TLSConnection, wire: StringTransport) -> None:
        context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = stdlib_ssl.CERT_NONE
        self.incoming, self.outgoing = stdlib_ssl.MemoryBIO(), stdlib_ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing)
        self.server, self.wire = server, wire

    def pump(self) -> None:
        """Move bytes both ways until neither side has more to say."""
        for _ in range(10):
            to_server = self.outgoing.read()
            if to_server:
                self.server.dataReceived(to_server)
            to_client = self.wire.value()
            self.wire.clear()
            if to_client:
                self.incoming.write(to_client)
            if not to_server and not to_client:
                return

    def handshake(self) -> None:
        for _ in range(10):
            try:
                self.tls.do_handshake()
                self.pump()
                return
            except stdlib_ssl.SSLWantReadError:
                self.pump()
        raise AssertionError("the in-memory handshake did not finish")

    def read(self) -> bytes:
        self.pump()
        out = b""
        while True:
            try:
                chunk = self.tls.read(65536)
            except (stdlib_ssl.SSLWantReadError, stdlib_ssl.SSLZeroReturnError):
                return out
            if not chunk:
                return out
            out += chunk


def memory_connection(tmp_path, interval: float):
    key, cert = write_self_signed(tmp_path)
    clock = task.Clock()
    factory = tls.TLSFactory(None, tls.server_context(str(key), str(cert)), direct_write=False,
                             clock=clock, write_interval=interval)
    inner = Collect()
    server = tls.TLSConnection(factory, inner)
    wire = StringTransport()
    server.makeConnection(wire)
    return clock, inner, server, MemoryPeer(server, wire)


def test_early_writes_wait_for_the_handshake_then_data_flows_both_ways(tmp_path):
    clock, inner, server, peer = memory_connection(tmp_path, 0.0)
    server.write(b"before the handshake\r\n")  # e.g. a refusal written on connect
    assert not inner.handshaken
    peer.handshake()
    assert inner.handshaken
    assert peer.read() == b"before the handshake\r\n"
    peer.tls.write(b"PING :x\r\n")
    peer.pump()
    assert inner.received == b"PING :x\r\n"
    server.write(b"PONG :x\r\n")
    assert peer.read() == b"PONG :x\r\n"


def test_output_within_the_interval_is_gathered_into_one_write(tmp_path):
    clock, inner, server, peer = memory_connection(tmp_path, 0.02)
    peer.handshake()
    clock.advance(1)
    server.write_counted(b"first\r\n")  # after a quiet spell: at once
    assert peer.read() == b"first\r\n"
    writes = len(peer.wire.value())
    server.write_counted(b"second\r\n")
    server.write_counted(b"third\r\n")
    assert peer.wire.value()[writes:] == b""  # held
    assert peer.read() == b""
    clock.advance(0.02)
    assert peer.read() == b"second\r\nthird\r\n"
    # Closing releases what is held first, then sends close_notify.
    server.write_counted(b"last words\r\n")
    server.loseConnection()
    assert peer.read() == b"last words\r\n"
    assert peer.wire.disconnecting


def test_close_before_the_handshake_waits_for_it(tmp_path):
    clock, inner, server, peer = memory_connection(tmp_path, 0.0)
    server.write(b"ERROR :Closing Link: full\r\n")
    server.loseConnection()
    assert not peer.wire.disconnecting
    peer.handshake()
    assert peer.read() == b"ERROR :Closing Link: full\r\n"
    assert peer.wire.disconnecting


def tls_records(wire: bytes) -> list[int]:
    """The lengths of the TLS records in some ciphertext (5-byte headers)."""
    lengths = []
    while wire:
        assert wire[0] in (21, 22, 23), wire[:5]
        length = int.from_bytes(wire[3:5], "big")
        lengths.append(length)
        wire = wire[5 + length:]
    return lengths


@pytest.mark.parametrize("interval", [0.0, 0.02])
def test_a_turns_output_is_one_tls_write(tmp_path, interval):
    """Everything the core queues for a client in one turn (a registration burst here) leaves
    as one TLS write: one record while it fits in 16 KB."""
    key, cert = write_self_signed(tmp_path)
    clock = task.Clock()
    chat = ChatFactory(ServerConfig(name="tls.test"), clock=clock)
    factory = tls.TLSFactory(chat, tls.server_context(str(key), str(cert)), direct_write=False,
                             clock=clock, write_interval=interval)
    wire = StringTransport()
    server = factory.buildProtocol(wire.getPeer())
    server.makeConnection(wire)
    peer = MemoryPeer(server, wire)
    peer.handshake()
    peer.read()
    clock.advance(1)
    peer.tls.write(b"NICK one\r\nUSER one 0 * :One\r\n")
    peer.pump()
    assert wire.value() == b""  # nothing is written before the turn ends
    clock.advance(0)
    burst = wire.value()
    assert len(tls_records(burst)) == 1
    peer.pump()
    lines = peer.read().split(b"\r\n")
    assert lines[0].startswith(b":tls.test 001 one ") and len(lines) > 10


def test_writes_after_a_tls_error_are_dropped_not_raised(tmp_path):
    """Garbage from the client breaks the TLS object: the connection is cut, and output the
    fan-out still has for it that turn is dropped quietly instead of raising from SSLObject."""
    clock, inner, server, peer = memory_connection(tmp_path, 0.0)
    peer.handshake()
    server.dataReceived(b"\x17\x03\x03\x00\x10" + b"not a real record")
    assert peer.wire.disconnecting or peer.wire.disconnected
    assert server.write_counted(b"PRIVMSG late :x\r\n") is None
