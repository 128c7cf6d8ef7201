"""WebSocket peers for tests: autobahn's client with :class:`LineClient`'s expectations, and the
daemon's chat (TCP) with its web site (page and WebSocket) on loopback."""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from helpers import LineClient
from twisted.internet import defer, endpoints, reactor

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory
from twistedchat.server.websocket import BINARY, TEXT, parse_networks, web_site


class WebSocketLines(LineClient):
    """:class:`LineClient`'s expectations over a WebSocket: each message is one line."""

    def __init__(self, protocol: IRCTestClient) -> None:
        super().__init__()
        self.protocol = protocol
        self.frames: list[tuple[bytes, bool]] = []

    def send(self, *lines: str | bytes) -> None:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode("utf-8")
            self.protocol.sendMessage(data, isBinary=self.protocol.binary)

    def close(self) -> None:
        self.protocol.sendClose(1000)


class IRCTestClient(WebSocketClientProtocol):
    """autobahn's client, recording every message."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = WebSocketLines(self)
        self.opened: defer.Deferred[None] = defer.Deferred()
        self.binary = False
        self.close_code: int | None = None
        self.close_reason = ""

    def onOpen(self) -> None:
        self.binary = self.websocket_protocol_in_use == BINARY
        self.opened.callback(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.lines.frames.append((payload, isBinary))
        self.lines.dataReceived(payload + b"\n")

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        self.close_code = code
        self.close_reason = str(reason)
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"refused: {code} {reason}"))
        if not self.lines.is_closed:
            self.lines.connectionLost()


class WebServer:
    """The daemon's chat on TCP plus its web site (page and WebSocket) on loopback."""

    host = "127.0.0.1"

    def __init__(self, config: ServerConfig, origins=(), proxies=()) -> None:
        self.factory = ChatFactory(config)
        self.site = web_site(self.factory, page=True, origins=origins,
                             proxies=parse_networks(proxies))
        self.listening: list[Any] = []
        self.clients: list[IRCTestClient] = []

    async def start(self) -> None:
        """Listen (again, on the same ports after :meth:`stop`)."""
        tcp = endpoints.TCP4ServerEndpoint(reactor, getattr(self, "port", 0), interface=self.host)
        web = endpoints.TCP4ServerEndpoint(reactor, getattr(self, "web_port", 0),
                                           interface=self.host)
        self.listening = [await tcp.listen(self.factory), await web.listen(self.site)]
        self.port = self.listening[0].getHost().port
        self.web_port = self.listening[1].getHost().port

    @property
    def client_endpoint(self) -> str:
        return f"tcp:{self.host}:{self.port}"

    async def stop(self) -> None:
        # Let every WebSocket finish closing first: tearing a half-closed one down under the Qt
        # reactor at the start of the next test crashes PyQt (a slot proxy deleted twice).
        for protocol in self.clients:
            if not protocol.lines.is_closed:
                if protocol.state == protocol.STATE_OPEN:
                    protocol.sendClose(1000)
                await protocol.lines.wait_closed()
        for port in self.listening:
            await port.stopListening()
        self.listening = []
        await self.factory.shutdown("Server restarting")

    async def websocket(self, **options: Any) -> IRCTestClient:
        """A WebSocket client of the web site once it is open (options: :func:`open_websocket`)."""
        protocol = await open_websocket(self.web_port, **options)
        self.clients.append(protocol)
        return protocol

    async def register_websocket(self, nick: str, **options: Any) -> WebSocketLines:
        """A registered WebSocket client, past its welcome."""
        return await sign_on((await self.websocket(**options)).lines, nick)


async def open_websocket(port: int, *, path: str = "/ws", protocols=(TEXT,),
                         origin: str | None = None, headers: dict[str, str] | None = None,
                         tls: Any = None, host: str = "127.0.0.1") -> IRCTestClient:
    """A WebSocket client of ``host:port`` once it is open (over TLS with ``tls``, a client context).

    A refused handshake raises ConnectionError with the code in its message.
    """
    url = f"{'wss' if tls else 'ws'}://{host}:{port}{path}"
    factory = WebSocketClientFactory(url, protocols=list(protocols) or None, origin=origin,
                                     headers=headers)
    factory.protocol = IRCTestClient
    protocol = factory.buildProtocol(None)
    endpoint = (endpoints.SSL4ClientEndpoint(reactor, host, port, tls) if tls
                else endpoints.TCP4ClientEndpoint(reactor, host, port))
    await endpoints.connectProtocol(endpoint, protocol)
    await protocol.opened.addTimeout(5, reactor)
    return protocol


async def sign_on(client: WebSocketLines, nick: str) -> WebSocketLines:
    """Register ``nick`` on an open WebSocket client; returns past the end of the MOTD."""
    client.nick = nick
    client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} in a browser")
    await client.expect("001")
    await client.expect(where=lambda m: m.command in ("376", "422"))
    return client
