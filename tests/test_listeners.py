"""The daemon listens on any endpoint description: TLS and UNIX sockets as well as TCP."""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from helpers import LineClient, connect, listener_for, wait_until, write_self_signed
from twisted.internet import defer, endpoints, protocol, reactor, ssl, task
from twisted.protocols.basic import LineReceiver

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import TLS_HANDSHAKE_TIMEOUT, AddressFromHeader, ChatFactory
from twistedchat.server.service import ChatService
from twistedchat.server.tap import Options


class WelcomeWaiter(LineReceiver):
    """Registers and fires ``welcomed`` with the 001 line."""

    def __init__(self) -> None:
        self.welcomed: defer.Deferred[str] = defer.Deferred()

    def connectionMade(self) -> None:
        self.sendLine(b"NICK tester")
        self.sendLine(b"USER tester 0 * :Tester")

    def lineReceived(self, line: bytes) -> None:
        if b" 001 " in line and not self.welcomed.called:
            self.welcomed.callback(line.decode())
            self.transport.loseConnection()


async def welcome_over(endpoint) -> str:
    client = await endpoint.connect(protocol.Factory.forProtocol(WelcomeWaiter))
    return await client.welcomed


def start_service(ports: list[str], config: ServerConfig | None = None) -> ChatService:
    chat = ChatService(config or ServerConfig(name="tls.test"), ports, reactor=reactor)
    chat.privilegedStartService()
    chat.startService()
    return chat


@pytest_twisted.ensureDeferred
async def test_tls_listener(tmp_path):
    key, cert = write_self_signed(tmp_path)
    options = Options()
    options.parseOptions(["--port", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
    chat = start_service(options["port"])
    try:
        port = chat.ports[0].getHost().port
        context = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(cert.read_text()))
        endpoint = endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, context)
        line = await welcome_over(endpoint)
        assert line.startswith(":tls.test 001 tester ")
    finally:
        await chat.stopService()


@pytest_twisted.ensureDeferred
async def test_unix_listener(tmp_path):
    path = tmp_path / "chat.sock"
    chat = start_service([f"unix:{path}"])
    try:
        line = await welcome_over(endpoints.UNIXClientEndpoint(reactor, str(path)))
        assert "tester!~tester@localhost" in line
    finally:
        await chat.stopService()


def test_bare_port_number_means_tcp():
    options = Options()
    options.parseOptions(["--port", "6667", "--port", "tcp:7000:interface=127.0.0.1"])
    assert options["port"] == ["tcp:6667", "tcp:7000:interface=127.0.0.1"]


def test_default_port_is_1234():
    options = Options()
    options.parseOptions([])
    assert options.config().ports == ["tcp:1234"]


def test_no_direct_write_option():
    options = Options()
    options.parseOptions([])
    assert options.config().direct_write is True
    options = Options()
    options.parseOptions(["--no-direct-write"])
    assert options.config().direct_write is False


async def silent_is_cut_and_does_not_hold_up_shutdown(factory: ChatFactory, clock: task.Clock,
                                                     address: tuple[str, int],
                                                     deadline: float) -> None:
    """A client that connects and says nothing is cut ``deadline`` seconds later (on ``clock``);
    another one, silent when the server stops, does not make the shutdown wait out the close
    grace (the clock never reaches it)."""
    silent: list[socket.socket] = []
    try:
        silent.append(socket.create_connection(address))
        await wait_until(lambda: factory.connections, "the silent client is accepted")
        clock.advance(deadline - 1)
        assert factory.connections
        clock.advance(1)
        await wait_until(lambda: not factory.connections, "the silent client is cut")
        silent.append(socket.create_connection(address))
        await wait_until(lambda: factory.connections, "another silent client is accepted")
        done = factory.shutdown("Server shutting down")
        await wait_until(lambda: done.called, "the shutdown finishes")
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.parametrize("engine", ["stdlib", "twisted"])
@pytest_twisted.ensureDeferred
async def test_tls_handshake_that_never_finishes_is_cut_and_does_not_hold_up_shutdown(tmp_path,
                                                                                        engine):
    """A client that connects to the TLS port and says nothing is cut at the handshake timeout,
    and one still in its handshake when the server stops does not wait out the close grace
    (either TLS engine)."""
    key, cert = write_self_signed(tmp_path)
    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="tls.test", tls_engine=engine), clock=clock)
    endpoint, wrapped = listener_for(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}", factory)
    port = await endpoint.listen(wrapped)
    address = ("127.0.0.1", port.getHost().port)
    try:
        # A client that finishes its handshake is not cut when the timeout comes.
        talking = LineClient()
        context = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(cert.read_text()))
        await endpoints.connectProtocol(
            endpoints.SSL4ClientEndpoint(reactor, *address, context), talking)
        for token in ("handshake", "after the timeout"):
            talking.send(f"PING :{token}")  # answered once the handshake is done

            def answered(token: str = token) -> bool:
                clock.advance(0)  # the factory flushes on its own (fake) clock
                return any(m.params[-1] == token for m in talking.since("PONG"))

            await wait_until(answered, f"the TLS client gets PONG {token}")
            clock.advance(TLS_HANDSHAKE_TIMEOUT + 1)
        talking.close()
        await talking.wait_closed()
        await wait_until(lambda: not factory.connections, "the TLS client is gone")
        await silent_is_cut_and_does_not_hold_up_shutdown(factory, clock, address,
                                                          TLS_HANDSHAKE_TIMEOUT)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_haproxy_listener_takes_the_address_from_the_proxy_header():
    """Host and per-address limit follow the PROXY header, not the proxy's own address."""
    chat = start_service(["haproxy:tcp:0:interface=127.0.0.1"],
                         ServerConfig(name="proxy.test", max_per_ip=1, cloak_hosts=False))
    clients = []
    try:
        port = chat.ports[0].getHost().port

        async def through_proxy(address: str):
            client = await connect(f"tcp:127.0.0.1:{port}")
            clients.append(client)
            client.send(f"PROXY TCP4 {address} 127.0.0.1 40000 6667")
            return client

        first = await through_proxy("203.0.113.7")
        first.send("NICK first", "USER first 0 * :First", "WHOIS first")
        whois = await first.expect("378")  # its own real host (others see a cloak in 311)
        assert whois.params[-1].endswith("@203.0.113.7 203.0.113.7")
        same = await through_proxy("203.0.113.7")
        same.send("NICK same")  # admitted (or refused) on its first data after the header
        error = await same.expect("ERROR")
        assert error.params[0] == \
            "Closing Link: 203.0.113.7 (Too many connections from your address)"
        await same.wait_closed()
        other = await through_proxy("198.51.100.2")
        other.send("NICK other", "USER other 0 * :Other")
        welcome = await other.expect("001")
        assert "other!~other@198.51.100.2" in welcome.params[-1]
    finally:
        for client in clients:
            client.close()
        await chat.stopService()


@pytest_twisted.ensureDeferred
async def test_haproxy_connection_without_a_header_is_cut_and_shutdown_closes_it():
    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="proxy.test", registration_timeout=30), clock=clock)
    endpoint = endpoints.serverFromString(reactor, "haproxy:tcp:0:interface=127.0.0.1")
    port = await endpoint.listen(AddressFromHeader(factory))
    try:
        await silent_is_cut_and_does_not_hold_up_shutdown(
            factory, clock, ("127.0.0.1", port.getHost().port), 30)
    finally:
        await port.stopListening()
