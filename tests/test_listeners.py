"""The daemon listens on any endpoint description: TLS and UNIX sockets as well as TCP."""

from __future__ import annotations

import pytest_twisted
from helpers import write_self_signed
from twisted.internet import defer, endpoints, protocol, reactor, ssl
from twisted.protocols.basic import LineReceiver

from twistedchat.server.config import ServerConfig
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


def start_service(ports: list[str]) -> ChatService:
    chat = ChatService(ServerConfig(name="tls.test"), ports, reactor=reactor)
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
