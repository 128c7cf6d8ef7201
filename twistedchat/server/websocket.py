"""IRC over WebSocket (the IRCv3 WebSocket spec) and the web client's site, on autobahn and twisted.web.

A browser speaks WebSocket, not raw TCP. :class:`IRCWebSocketProtocol` (autobahn) negotiates the
``binary.ircv3.net`` / ``text.ircv3.net`` subprotocols, checks the Origin and, behind a trusted
reverse proxy, takes the client's address from ``Forwarded`` / ``X-Forwarded-For``. Everything
after the handshake goes through the daemon's own :class:`~twistedchat.server.pipeline.LinePipeline`,
the one a TCP connection feeds, so a WebSocket client meets exactly the same per-line rules (length,
UTF-8, CR/LF/NUL, flood bucket and queue, send queue, handler errors) and the same per-address
limits and timeouts; :class:`WebSocketLink` is its outlet. Each IRC line goes out as one WebSocket
message, without its CR LF.

Why autobahn: Twisted's own ``twisted.web.websocket`` (26.10) cannot choose a subprotocol, and the
IRCv3 spec requires the server to echo back the one it accepts; autobahn's ``onConnect`` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.web import resource, server, static

from twistedchat.server import fastpath
from twistedchat.server.connection import display_host, stream_of
from twistedchat.server.net import ChatFactory
from twistedchat.server.pipeline import LinePipeline, PipelineProducer, split_lines
from twistedchat.web import STATIC_DIR
from twistedchat.wire.message import MAX_LINE_BYTES, MAX_TAGS_BYTES, Message

log = Logger()

#: The IRCv3 subprotocols, the binary one first (the spec's MUST).
BINARY = "binary.ircv3.net"
TEXT = "text.ircv3.net"
SUBPROTOCOLS = (BINARY, TEXT)
#: Messages longer than this are refused by the WebSocket layer itself (close code 1009); shorter
#: ones over the IRC limit reach the line pipeline and get 417 like a long TCP line.
MAX_MESSAGE_BYTES = 4 * (MAX_TAGS_BYTES + MAX_LINE_BYTES)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- the handshake's rules (pure functions) -------------------------------------------------------


def choose_subprotocol(offered: Sequence[str]) -> str | None:
    """The first subprotocol in the client's order of preference that we speak, if any."""
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case without a default port or a trailing slash.

    Raises ValueError when ``origin`` is not an http(s) origin.
    """
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{origin!r} is not an http:// or https:// origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} is an address, not an origin (scheme://host[:port])")
    port = parts.port
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(origin: str | None, host_header: str | None, allowed: Iterable[str]) -> bool:
    """Whether a handshake's Origin may connect.

    A request without Origin is not from a browser page (IRC libraries, bots): allowed, since the
    Origin check only keeps other web sites' pages out. With an allow-list, the origin must be on
    it; without one, it must be the page's own (its host and port equal the Host header's).
    """
    if not origin:
        return True
    try:
        normal = normalize_origin(origin)
    except ValueError:
        return False
    allowed = list(allowed)
    if allowed:
        return normal in allowed
    if not host_header:
        return False
    scheme = normal.split("://", 1)[0]
    try:
        return normal == normalize_origin(f"{scheme}://{host_header.strip()}")
    except ValueError:
        return False


def parse_networks(values: Iterable[str]) -> list[Network]:
    """Addresses or CIDR ranges (``127.0.0.1``, ``10.0.0.0/8``, ``::1``) as networks."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values]


def _address(value: str) -> str | None:
    """An IP address from a forwarding header's node (``1.2.3.4``, ``"[::1]:80"``, ``1.2.3.4:80``)."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def forwarded_address(headers: dict[str, str]) -> str | None:
    """The client address our proxy put in ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``.

    The last entry is the one the proxy next to us added (entries before it came from the client
    or from proxies we know nothing about). ``None`` if there is no usable address.
    """
    forwarded = headers.get("forwarded")
    if forwarded:
        last = forwarded.split(",")[-1]
        for pair in last.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for":
                return _address(value)
        return None
    chain = headers.get("x-forwarded-for")
    if chain:
        return _address(chain.split(",")[-1])
    return None


def _in_networks(host: str, networks: Sequence[Network]) -> bool:
    """Whether ``host`` is an IP address inside one of ``networks``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(peer: str, headers: dict[str, str], proxies: Sequence[Network]) -> str:
    """The address a connection counts as: the forwarded one only when ``peer`` is a trusted proxy."""
    if not _in_networks(peer, proxies):
        return peer
    return forwarded_address(headers) or peer


def frame(line: bytes, opcode: int) -> bytes:
    """One unmasked, final WebSocket frame (what a server sends) carrying ``line``."""
    length = len(line)
    if length < 126:
        return bytes((0x80 | opcode, length)) + line
    if length < 65536:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big") + line
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big") + line


def as_text(line: bytes) -> bytes:
    """``line`` if it is UTF-8, else with each bad byte replaced by U+FFFD (text frames must be UTF-8)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("utf-8", "replace").encode("utf-8")
    return line


# -- the connection -------------------------------------------------------------------------------


class WebSocketLink(PipelineProducer):
    """One WebSocket client as the chat sees it: its pipeline's outlet, counted by the factory.

    As the TCP connection's producer it is paused when the browser stops reading (the sendq).

    The pipeline writes whole CR LF lines (one call per reactor turn, however many lines it has);
    each line becomes one message, and they all leave in one write to the TCP connection.
    """

    def __init__(self, websocket: IRCWebSocketProtocol, host: str) -> None:
        self.websocket = websocket
        self.host = host
        #: what it counts against once admitted (see ChatFactory.admit)
        self.counted_keys: tuple[str | None, ...] = ()
        self.pipeline: LinePipeline | None = None
        self.opcode = 0x2 if websocket.binary else 0x1
        #: The TCP fast path (fastpath.py), as a TCP client's connection has it, where it may run.
        self.direct: fastpath.DirectWriter | None = None

    # -- the pipeline's outlet -------------------------------------------------------------------

    def write(self, data: bytes) -> int | None:
        """Send each line as a message; the bytes the TCP connection now holds (None: unknown)."""
        websocket = self.websocket
        if websocket.state != websocket.STATE_OPEN:
            return None
        lines = split_lines(data)
        opcode = self.opcode
        if opcode == 0x1:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                lines = [as_text(line) for line in lines]
        frames = b"".join([frame(line, opcode) for line in lines])
        if self.direct is not None:
            return self.direct.write(frames)
        stream_of(websocket).write(frames)
        return None

    def abort(self) -> None:
        """Cut the connection now."""
        self.websocket.dropConnection(abort=True)

    def close(self) -> None:
        """Close frame after what was written; autobahn cuts the TCP connection if no answer comes."""
        websocket = self.websocket
        if websocket.state == websocket.STATE_OPEN:
            websocket.sendClose(1000)
        elif websocket.state != websocket.STATE_CLOSED:
            websocket.dropConnection(abort=True)


class IRCWebSocketProtocol(WebSocketServerProtocol):
    """One browser (or other WebSocket) client: the handshake here, then the daemon's pipeline."""

    factory: IRCWebSocketFactory

    def __init__(self) -> None:
        super().__init__()
        self.binary = False
        self.client_host = ""
        self.link: WebSocketLink | None = None

    def onConnect(self, request: ConnectionRequest) -> str | None:
        """Check the Origin, find the client's address, pick the subprotocol."""
        factory = self.factory
        if not origin_allowed(request.origin, request.headers.get("host"), factory.origins):
            log.info("refused a WebSocket from origin {origin}", origin=request.origin)
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Origin not allowed")
        peer = stream_of(self).getPeer()
        self.client_host = client_address(getattr(peer, "host", "localhost"), request.headers,
                                          factory.proxies)
        chosen = choose_subprotocol(request.protocols)
        # Without a subprotocol (older web clients) we speak text, which every browser reads.
        self.binary = chosen == BINARY
        return chosen

    def onOpen(self) -> None:
        """Admit the client under the per-address limits and give it a pipeline."""
        chat = self.factory.chat
        address = (IPv6Address if ":" in self.client_host else IPv4Address)(
            "TCP", self.client_host, 0)
        link = self.link = WebSocketLink(self, display_host(address))
        refusal = chat.admit(link)
        if refusal:
            link.write(Message("ERROR", (f"Closing Link: {link.host} ({refusal})",)).to_bytes())
            self.link = None
            self.sendClose(1000)
            return
        link.pipeline = chat.open_pipeline(link.host, link)
        if chat.direct_write and fastpath.can_write_directly(self.transport):
            link.direct = fastpath.DirectWriter(self.transport)
        # twisted.web's HTTPChannel may have registered itself for the request that became this
        # WebSocket (on plain TCP it does); that request is over.
        stream_of(self).unregisterProducer()
        stream_of(self).registerProducer(link, True)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """One WebSocket message: one IRC line, into the same pipeline as a TCP line."""
        pipeline = self.link.pipeline if self.link is not None else None
        if pipeline is None or pipeline.closing:
            return
        pipeline.touch()
        if payload[-1:] == b"\n":  # tolerate a client that still ends its lines
            payload = payload[:-2] if payload[-2:] == b"\r\n" else payload[:-1]
        if payload:
            pipeline.line_received(payload)

    def onPing(self, payload: bytes) -> None:
        """Answer a WebSocket ping, unless the client stopped reading.

        A pong bypasses the pipeline and its sendq; to a client that sends pings but reads
        nothing, pongs would only pile up in our buffer. Pings are no sign of life for the chat:
        IRC's own PING timeout still applies.
        """
        link = self.link
        if link is not None and link.pipeline is not None and link.pipeline.output_paused:
            return
        super().onPing(payload)

    def connectionLost(self, reason: Any = None) -> None:
        """The TCP connection ended: release its place in the site's per-address count."""
        limiter = self.factory.limiter
        if limiter is not None:
            limiter.release(getattr(stream_of(self).getPeer(), "host", None))
        super().connectionLost(reason)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        link, self.link = self.link, None
        if link is not None:
            if link.pipeline is not None:
                link.pipeline.connection_lost()
            self.factory.chat.forget(link)


class IRCWebSocketFactory(WebSocketServerFactory):
    """Makes :class:`IRCWebSocketProtocol` s for one :class:`ChatFactory` (one chat, many doors)."""

    protocol = IRCWebSocketProtocol  # type: ignore[assignment]  # Factory.protocol is typed with an unbound TypeVar

    def __init__(self, chat: ChatFactory, origins: Sequence[str] = (),
                 proxies: Sequence[Network] = (), limiter: PeerLimiter | None = None) -> None:
        super().__init__(server="twistedchat")  # type: ignore[no-untyped-call]  # autobahn's factory __init__ is unannotated
        self.chat = chat
        self.limiter = limiter
        self.origins = [normalize_origin(origin) for origin in origins]
        self.proxies = list(proxies)
        self.setProtocolOptions(  # type: ignore[no-untyped-call]  # autobahn's, unannotated
            maxMessagePayloadSize=MAX_MESSAGE_BYTES,
            maxFramePayloadSize=MAX_MESSAGE_BYTES,
            # A protocol error (such as a message over the limit) gets a close frame with its code
            # (1009 "message too big") before the connection ends, not a bare hang-up.
            failByDrop=False,
            # A plain GET on a WebSocket path gets an HTTP error, not autobahn's status page.
            webStatus=False,
            # The chat's own PING and registration timeouts apply; the handshake gets a few seconds.
            openHandshakeTimeout=10,
            closeHandshakeTimeout=2,
        )


# -- the site ---------------------------------------------------------------------------------------


class StaticFiles(static.File):
    """The web client's files, without directory listings, with safe headers."""

    contentTypes = {
        **static.File.contentTypes,
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
    }

    def directoryListing(self) -> resource.Resource:
        return resource.NoResource()

    def render(self, request: server.Request) -> Any:
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        request.setHeader(
            b"Content-Security-Policy",
            # Avatars (draft/metadata-2) are people's own web addresses: images from any
            # http(s) host, fetched without a referrer; nothing else leaves the page's origin.
            b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: https: http:; "
            b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        )
        return super().render(request)  # type: ignore[no-untyped-call]  # twisted.web's render is unannotated


class PeerLimiter:
    """Connections open at once per address on one web listener, up to ``limit``.

    The chat counts a WebSocket client under ``--max-per-ip`` once its handshake is done; this
    bounds what one address can hold open before that (idle HTTP connections, page loads) too.
    Trusted proxies are exempt: they carry many people.
    """

    def __init__(self, limit: int, exempt: Sequence[Network] = ()) -> None:
        self.limit = limit
        self.exempt = list(exempt)
        self.open: dict[str, int] = {}

    def take(self, host: str | None) -> bool:
        """Count a new connection from ``host``; False if that address has too many."""
        if host is None or _in_networks(host, self.exempt):
            return True
        count = self.open.get(host, 0)
        if count >= self.limit:
            log.info("refused a web connection from {host}: {count} open", host=host, count=count)
            return False
        self.open[host] = count + 1
        return True

    def release(self, host: str | None) -> None:
        """A connection from ``host`` ended."""
        count = self.open.get(host or "", 0)
        if count > 1:
            self.open[host or ""] = count - 1
        else:
            self.open.pop(host or "", None)


class WebSite(server.Site):
    """The web listener's site; with a :class:`PeerLimiter`, connections per address are bounded.

    An HTTP connection is released when it ends; one that became a WebSocket no longer reaches its
    HTTP channel, so :class:`IRCWebSocketProtocol` releases it instead.
    """

    noisy = False

    def __init__(self, root: resource.Resource, limiter: PeerLimiter | None) -> None:
        super().__init__(root)  # type: ignore[no-untyped-call]  # twisted.web's Site.__init__ is unannotated
        self.limiter = limiter

    def buildProtocol(self, addr: Any) -> Any:
        limiter = self.limiter
        if limiter is None:
            return super().buildProtocol(addr)  # type: ignore[no-untyped-call]  # unannotated in twisted.web
        host = getattr(addr, "host", None)
        if not limiter.take(host):
            return None
        channel = super().buildProtocol(addr)  # type: ignore[no-untyped-call]  # unannotated in twisted.web
        lost = channel.connectionLost

        def connectionLost(reason: Any) -> None:
            limiter.release(host)
            lost(reason)

        channel.connectionLost = connectionLost
        return channel


#: Connections one address may hold on a web listener for each chat connection ``--max-per-ip``
#: allows it: the WebSocket, and the up to 6 that a browser loads a page over (kept open a while).
PAGE_CONNECTIONS = 8


def web_site(chat: ChatFactory, *, page: bool, origins: Sequence[str] = (),
             proxies: Sequence[Network] = ()) -> WebSite:
    """The HTTP site: the WebSocket at ``/ws`` (and at ``/`` without the page), the page at ``/``.

    With ``--max-per-ip N``, one address may hold at most N × :data:`PAGE_CONNECTIONS`
    connections to it at once (the chat itself still admits N of them as clients).
    """
    most = chat.config.max_per_ip
    limiter = PeerLimiter(most * PAGE_CONNECTIONS, proxies) if most else None
    sockets = WebSocketResource(IRCWebSocketFactory(chat, origins, proxies, limiter))
    root: resource.Resource
    if page:
        root = StaticFiles(str(STATIC_DIR))
    else:
        root = resource.Resource()
        root.putChild(b"", sockets)
    root.putChild(b"ws", sockets)
    return WebSite(root, limiter)
