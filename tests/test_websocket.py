"""IRC over WebSocket: the handshake's rules, and the daemon's per-line rules over real loopback.

The pure rules (subprotocol choice, Origin, forwarding headers, framing) are tested as functions;
the rest with autobahn's own WebSocket client against the daemon's site on 127.0.0.1, beside plain
TCP clients of the same chat.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
import pytest_twisted
from helpers import register, wait_until
from twisted.internet import endpoints, reactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage
from websocket_peers import WebServer, open_websocket, sign_on

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory
from twistedchat.server.tap import Options
from twistedchat.server.websocket import (
    BINARY,
    MAX_MESSAGE_BYTES,
    TEXT,
    choose_subprotocol,
    client_address,
    forwarded_address,
    frame,
    normalize_origin,
    origin_allowed,
    parse_networks,
    web_site,
)

ensure = pytest_twisted.ensureDeferred


# -- the rules as functions ----------------------------------------------------------------------


def test_subprotocol_follows_the_clients_preference():
    assert choose_subprotocol([TEXT, BINARY]) == TEXT
    assert choose_subprotocol([BINARY, TEXT]) == BINARY
    assert choose_subprotocol(["chat", BINARY]) == BINARY
    assert choose_subprotocol(["chat"]) is None
    assert choose_subprotocol([]) is None


def test_origins_are_normalized():
    assert normalize_origin("HTTPS://Chat.Example.org:443/") == "https://chat.example.org"
    assert normalize_origin("http://localhost:8080") == "http://localhost:8080"
    assert normalize_origin("http://[::1]:80") == "http://[::1]"
    for bad in ("chat.example.org", "ftp://x.org", "https://x.org/path", "null", "https://u@x.org"):
        with pytest.raises(ValueError):
            normalize_origin(bad)


def test_origin_policy():
    # No Origin: not a web page (bots, IRC libraries): allowed.
    assert origin_allowed(None, "chat.example.org", [])
    # Same origin as the Host the page was served from.
    assert origin_allowed("http://localhost:8080", "localhost:8080", [])
    assert origin_allowed("https://chat.example.org", "chat.example.org", [])
    assert origin_allowed("https://chat.example.org", "chat.example.org:443", [])
    # Another site, another port, a file:// page ("null"), no Host to compare with: refused.
    assert not origin_allowed("http://evil.example", "localhost:8080", [])
    assert not origin_allowed("http://localhost:9999", "localhost:8080", [])
    assert not origin_allowed("null", "localhost:8080", [])
    assert not origin_allowed("http://localhost:8080", None, [])
    # With an allow-list, only the list counts.
    allowed = [normalize_origin("https://web.example.org")]
    assert origin_allowed("https://web.example.org", "irc.example.org", allowed)
    assert not origin_allowed("https://irc.example.org", "irc.example.org", allowed)


def test_forwarded_headers():
    assert forwarded_address({"x-forwarded-for": "203.0.113.7"}) == "203.0.113.7"
    # The last entry is the one our proxy added; earlier ones may be forged by the client.
    assert forwarded_address({"x-forwarded-for": "6.6.6.6, 203.0.113.7"}) == "203.0.113.7"
    assert forwarded_address({"forwarded": 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https'}) \
        == "2001:db8::7"
    assert forwarded_address({"forwarded": "for=203.0.113.7:1234;by=10.0.0.1"}) == "203.0.113.7"
    assert forwarded_address({"forwarded": "for=unknown"}) is None
    assert forwarded_address({"x-forwarded-for": "not-an-address"}) is None
    assert forwarded_address({}) is None


def test_forwarded_address_counts_only_from_a_trusted_proxy():
    headers = {"x-forwarded-for": "203.0.113.7"}
    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address("127.0.0.1", headers, proxies) == "203.0.113.7"
    assert client_address("10.1.2.3", headers, proxies) == "203.0.113.7"
    assert client_address("192.0.2.1", headers, proxies) == "192.0.2.1"
    assert client_address("127.0.0.1", headers, []) == "127.0.0.1"
    assert client_address("127.0.0.1", {}, proxies) == "127.0.0.1"
    assert proxies[1] == ipaddress.ip_network("10.0.0.0/8")


def test_frames_are_final_and_unmasked():
    assert frame(b"PING x", 0x1) == b"\x81\x06PING x"
    assert frame(b"y" * 200, 0x2)[:4] == b"\x82\x7e\x00\xc8"
    assert frame(b"z" * 70000, 0x1)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")


def test_no_pong_to_a_client_that_stopped_reading():
    from types import SimpleNamespace

    from twistedchat.server.websocket import IRCWebSocketProtocol

    protocol = IRCWebSocketProtocol()
    protocol.state = protocol.STATE_OPEN
    pongs: list[bytes] = []
    protocol.sendPong = pongs.append
    pipeline = SimpleNamespace(output_paused=False)
    protocol.link = SimpleNamespace(pipeline=pipeline)
    protocol.onPing(b"one")
    pipeline.output_paused = True  # its TCP buffer is full: the client reads nothing
    protocol.onPing(b"two")
    assert pongs == [b"one"]


def test_options():
    options = Options()
    options.parseOptions([
        "--websocket", "8081", "--web", "tcp:8080:interface=127.0.0.1",
        "--websocket-origin", "https://Chat.Example.org/", "--trusted-proxy", "127.0.0.1",
        "--trusted-proxy", "fd00::/8",
    ])
    config = options.config()
    assert config.websocket == ["tcp:8081"]
    assert config.web == ["tcp:8080:interface=127.0.0.1"]
    assert config.websocket_origins == ["https://chat.example.org"]
    assert config.trusted_proxies == ["127.0.0.1/32", "fd00::/8"]
    for bad, said in ((["--websocket-origin", "chat.example.org"], "not an http"),
                      (["--trusted-proxy", "proxy.local"], "not an IP address"),
                      (["--web", "nonsense:1"], "web: bad endpoint")):
        with pytest.raises(usage.UsageError, match=said):
            Options().parseOptions(bad)


def test_config_file_settings(tmp_path):
    """The same settings in a TOML config file (docs/operations.md)."""
    from twistedchat.server.config import ConfigError, load_config

    path = tmp_path / "chat.toml"
    path.write_text('web = ["tcp:8080"]\nwebsocket = 8081\n'
                    'websocket-origin = ["https://Web.Example.org"]\ntrusted-proxy = ["10.0.0.0/8"]\n')
    config = load_config(str(path))
    assert (config.web, config.websocket) == (["tcp:8080"], ["tcp:8081"])
    assert config.websocket_origins == ["https://web.example.org"]
    assert config.trusted_proxies == ["10.0.0.0/8"]
    path.write_text('trusted-proxy = ["nowhere"]\n')
    with pytest.raises(ConfigError, match="trusted-proxy"):
        load_config(str(path))


# -- over loopback --------------------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def web_server(request):
    settings = dict(getattr(request, "param", {}))
    origins = settings.pop("origins", ())
    proxies = settings.pop("proxies", ())
    # Hosts as they are (cloaks are tested in test_admin_*.py): these tests check addresses.
    server = WebServer(ServerConfig(name="web.server", **{"cloak_hosts": False, **settings}),
                       origins, proxies)
    await server.start()
    yield server
    await server.stop()


@ensure
async def test_subprotocol_is_echoed_and_sets_the_frame_type(web_server):
    for offered, chosen, binary in (([TEXT, BINARY], TEXT, False), ([BINARY, TEXT], BINARY, True),
                                    ([BINARY], BINARY, True)):
        protocol = await web_server.websocket(protocols=offered)
        assert protocol.websocket_protocol_in_use == chosen
        client = protocol.lines
        client.send("PING :hello")
        await client.expect("PONG", None, "hello")
        assert protocol.lines.frames[-1][1] is binary
        client.close()
        await client.wait_closed()


@ensure
async def test_no_subprotocol_speaks_text(web_server):
    protocol = await web_server.websocket(protocols=())
    assert protocol.websocket_protocol_in_use is None
    protocol.lines.send("PING :legacy")
    await protocol.lines.expect("PONG", None, "legacy")
    assert protocol.lines.frames[-1][1] is False
    protocol.lines.close()
    await protocol.lines.wait_closed()


@ensure
async def test_websocket_at_root_and_ws_without_the_page():
    factory = ChatFactory(ServerConfig(name="ws.only"))
    site = web_site(factory, page=False)
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    try:
        for path in ("/", "/ws"):
            protocol = await open_websocket(port.getHost().port, path=path)
            protocol.lines.send("PING :x")
            await protocol.lines.expect("PONG")
            protocol.lines.close()
            await protocol.lines.wait_closed()
    finally:
        await port.stopListening()
        await factory.shutdown()


@ensure
async def test_other_origins_are_refused(web_server):
    same = f"http://127.0.0.1:{web_server.web_port}"
    protocol = await web_server.websocket(origin=same)
    protocol.lines.close()
    with pytest.raises(ConnectionError, match="403"):
        await web_server.websocket(origin="http://evil.example")
    with pytest.raises(ConnectionError, match="403"):
        await web_server.websocket(origin=f"http://127.0.0.1:{web_server.web_port + 1}")
    await wait_until(lambda: not web_server.factory.connections, "no chat connection is left")


@pytest.mark.parametrize("web_server", [{"origins": ["https://web.example.org"]}], indirect=True)
@ensure
async def test_origin_allow_list(web_server):
    protocol = await web_server.websocket(origin="https://web.example.org")
    protocol.lines.close()
    with pytest.raises(ConnectionError, match="403"):
        await web_server.websocket(origin=f"http://127.0.0.1:{web_server.web_port}")


@ensure
async def test_browser_and_tcp_clients_talk_one_line_per_message(web_server):
    web = await web_server.register_websocket("webby")
    tcp = await register(web_server, "tcpy")
    third = await register(web_server, "third")
    for client in (tcp, third, web):
        client.send("JOIN #mixed")
        await client.expect("366")
    # Like a TCP client's, a plain-TCP WebSocket's output takes the direct-write fast path.
    (link,) = [c for c in web_server.factory.connections if getattr(c, "websocket", None)]
    assert link.direct is not None
    web.send("PRIVMSG #mixed :hello from a browser ✓")
    await tcp.expect("PRIVMSG", "#mixed", "hello from a browser ✓", source="webby!")
    tcp.send("PRIVMSG #mixed :hello from TCP")
    await web.expect("PRIVMSG", "#mixed", "hello from TCP", source="tcpy!")
    # NAMES is one outbox item of several lines: each must be its own WebSocket message.
    before = len(web.frames)
    web.send("NAMES #mixed")
    await web.expect("366")
    frames = web.frames[before:]
    assert [parse_command(payload) for payload, _ in frames] == ["353", "366"]
    for payload, _ in web.frames:
        assert b"\r" not in payload and b"\n" not in payload
        payload.decode("utf-8")
    # The server's message-of-the-day burst (many lines written at once) came as many messages too.
    assert sum(1 for payload, _ in web.frames if parse_command(payload) in ("001", "002", "003")) == 3
    for client in (web, tcp, third):
        client.close()


def parse_command(payload: bytes) -> str:
    words = payload.split(b" ")
    while words and words[0][:1] in (b"@", b":"):
        words.pop(0)
    return words[0].decode()


@ensure
async def test_long_line_gets_417_and_the_connection_goes_on(web_server):
    web = await web_server.register_websocket("longy")
    web.send("PRIVMSG longy :" + "x" * 600)
    reply = await web.expect("417")
    assert reply.params[-1] == "Input line was too long"
    web.send("PING :still here")
    await web.expect("PONG", None, "still here")
    # A message that carries two lines is refused, not run as two commands.
    web.send(b"PRIVMSG longy :one\nQUIT :two")
    fail = await web.expect("FAIL")
    assert fail.params[:2] == ("PRIVMSG", "INVALID_MESSAGE")
    assert web_server.factory.core.state.find_user("longy") is not None
    # Invalid UTF-8 (possible in a binary message) gets the TCP answer.
    protocol = await web_server.websocket(protocols=[BINARY])
    protocol.lines.send(b"NICK \xff\xfe")
    fail = await protocol.lines.expect("FAIL")
    assert fail.params[:2] == ("NICK", "INVALID_UTF8")
    # A trailing CR LF from an older client is tolerated.
    web.send(b"PING :crlf\r\n")
    await web.expect("PONG", None, "crlf")
    web.close()
    protocol.lines.close()
    # A message far over any line (MAX_MESSAGE_BYTES) is refused by the WebSocket layer itself.
    huge = await web_server.register_websocket("huge")
    huge.send("PRIVMSG huge :" + "x" * MAX_MESSAGE_BYTES)
    await huge.wait_closed()
    assert huge.protocol.close_code == 1009
    await wait_until(lambda: web_server.factory.core.state.find_user("huge") is None, "huge is gone")


@pytest.mark.parametrize("web_server", [{"flood_burst": 5, "flood_rate": 1, "flood_queue": 20}],
                         indirect=True)
@ensure
async def test_flood_is_delayed_then_disconnected(web_server):
    flooder = await web_server.register_websocket("flooder")
    watcher = await register(web_server, "watcher")
    flooder.send(*(f"PRIVMSG watcher :flood {n}" for n in range(100)))
    error = await flooder.expect("ERROR")
    assert error.params[0] == "Closing Link: 127.0.0.1 (Excess Flood)"
    await flooder.wait_closed()
    received = [m.params[-1] for m in watcher.messages if m.command == "PRIVMSG"]
    assert received[0] == "flood 0" and len(received) <= 10
    watcher.close()


@pytest.mark.parametrize("web_server", [{"proxies": ["127.0.0.1"], "max_per_ip": 1}],
                         indirect=True)
@ensure
async def test_trusted_proxy_supplies_the_address(web_server):
    first = await web_server.register_websocket(
        "proxied", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    first.send("WHOIS proxied")
    whois = await first.expect("311")
    assert whois.params[3] == "203.0.113.7"
    # Per-address limits count the forwarded address: another one still gets in, the same is refused.
    second = await web_server.register_websocket(
        "other", headers={"Forwarded": 'for="[2001:db8::5]:1234";proto=https'})
    second.send("WHOIS other")
    assert (await second.expect("311")).params[3] == "2001:db8::5"
    third = (await web_server.websocket(headers={"X-Forwarded-For": "203.0.113.7"})).lines
    error = await third.expect("ERROR")
    assert "Too many connections" in error.params[0]
    await third.wait_closed()
    first.close()
    second.close()


@pytest.mark.parametrize("web_server", [{"max_per_ip": 1}], indirect=True)
@ensure
async def test_one_address_cannot_hold_many_web_connections(web_server):
    """Idle HTTP connections (no WebSocket yet) are bounded per address too: 8 × --max-per-ip."""
    from twisted.internet.protocol import Protocol

    from twistedchat.server.websocket import PAGE_CONNECTIONS

    class Idle(Protocol):
        def __init__(self) -> None:
            self.closed = False

        def connectionLost(self, reason: object = None) -> None:
            self.closed = True

    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", web_server.web_port)
    held = [await endpoints.connectProtocol(endpoint, Idle()) for _ in range(PAGE_CONNECTIONS)]
    extra = await endpoints.connectProtocol(endpoint, Idle())
    await wait_until(lambda: extra.closed, "the connection over the limit is closed")
    assert not any(idle.closed for idle in held)
    held[0].transport.loseConnection()
    await wait_until(lambda: held[0].closed, "one idle connection went away")
    # A slot is free again: a browser can connect (and the chat counts it under --max-per-ip).
    limiter = web_server.site.limiter
    client = await web_server.register_websocket("after")
    assert limiter.open == {"127.0.0.1": PAGE_CONNECTIONS}  # the WebSocket holds its place
    client.close()
    await client.wait_closed()
    for idle in held[1:]:
        idle.transport.loseConnection()
    await wait_until(lambda: all(idle.closed for idle in held), "the idle connections are closed")
    # Every place is given back, the upgraded connection's too.
    await wait_until(lambda: not limiter.open, "the per-address count is back to zero")


@ensure
async def test_forwarding_headers_are_ignored_without_a_trusted_proxy(web_server):
    client = await web_server.register_websocket("direct", headers={"X-Forwarded-For": "6.6.6.6"})
    client.send("WHOIS direct")
    assert (await client.expect("311")).params[3] == "127.0.0.1"
    client.close()


@pytest.mark.parametrize("web_server", [{"registration_timeout": 1}], indirect=True)
@ensure
async def test_registration_timeout_applies(web_server):
    protocol = await web_server.websocket()
    error = await protocol.lines.expect("ERROR", timeout=5)
    assert error.params[0].endswith("(Registration timed out)")
    await protocol.lines.wait_closed()


@pytest.mark.parametrize("web_server", [{"ping_interval": 1, "ping_timeout": 1}], indirect=True)
@ensure
async def test_ping_timeout_applies(web_server):
    quiet = await web_server.register_websocket("quiet")
    await quiet.expect("PING", timeout=5)
    error = await quiet.expect("ERROR", timeout=5)
    assert "Ping timeout" in error.params[0]
    await quiet.wait_closed()


@pytest.mark.parametrize("web_server", [{"sendq": 32 * 1024, "flood_rate": 0}], indirect=True)
@ensure
async def test_a_tab_that_stops_reading_is_dropped_at_sendq(web_server):
    factory = web_server.factory
    before = set(factory.connections)
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    reader = await web_server.register_websocket("stuck")
    (conn,) = set(factory.connections) - before
    reader.send("JOIN #busy")
    await reader.expect("366")
    # The browser stops reading: small buffers both sides, so little data fills them.
    reader.protocol.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.protocol.transport.pauseProducing()
    conn.websocket.transport.getHandle().setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    talker = await register(web_server, "talker")
    talker.send("JOIN #busy")
    await talker.expect("366")
    text = "z" * 400
    for batch in range(10):
        talker.send(*(f"PRIVMSG #busy :{batch}-{n} {text}" for n in range(100)))
        await talker.sync()
        if conn not in factory.connections:
            break
    await wait_until(lambda: conn not in factory.connections, "the stuck tab is dropped")
    globalLogPublisher.removeObserver(events.append)
    assert factory.core.state.find_user("stuck") is None
    assert any("send queue exceeded" in formatEvent(e) for e in events)
    talker.send("PRIVMSG #busy :after")
    talker.send("PING :alive")
    await talker.expect("PONG", None, "alive")
    reader.protocol.transport.resumeProducing()
    talker.close()


@ensure
async def test_page_and_its_files_are_served(web_server):
    from twisted.internet.protocol import Protocol
    from twisted.web.client import Agent, readBody

    agent = Agent(reactor)
    base = f"http://127.0.0.1:{web_server.web_port}"
    response = await agent.request(b"GET", f"{base}/".encode())
    body = await readBody(response)
    assert response.code == 200 and b'<script type="module" src="app.js">' in body
    assert response.headers.getRawHeaders(b"content-security-policy")[0].startswith(b"default-src 'self'")
    for name, kind in (("app.js", b"text/javascript"), ("client.js", b"text/javascript"),
                       ("irc.js", b"text/javascript"), ("style.css", b"text/css")):
        response = await agent.request(b"GET", f"{base}/{name}".encode())
        await readBody(response)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type")[0].startswith(kind)
    response = await agent.request(b"GET", f"{base}/../setup.cfg".encode())
    await readBody(response)
    assert response.code == 404
    # A plain GET where the WebSocket lives: 426, not a page.
    response = await agent.request(b"GET", f"{base}/ws".encode())
    assert response.code == 426
    response.deliverBody(Protocol())  # autobahn closes without a length: nothing to read


@ensure
async def test_twistd_serves_the_page_and_websocket_and_says_goodbye(tmp_path):
    """``twistd chat --websocket --web``: both listeners work; SIGTERM tells WebSocket clients too."""
    from helpers import DaemonProcess, free_port
    from twisted.web.client import Agent, readBody

    web_port, socket_port = free_port(), free_port()
    daemon = DaemonProcess(tmp_path, "--web", f"tcp:{web_port}:interface=127.0.0.1",
                           "--websocket", f"tcp:{socket_port}:interface=127.0.0.1")
    try:
        await daemon.wait_listening()

        def listening(port: int) -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
            return True

        await wait_until(lambda: listening(web_port) and listening(socket_port),
                         "the web listeners are open")
        response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{web_port}/".encode())
        assert b"twistedchat" in await readBody(response)
        clients = [await sign_on((await open_websocket(port)).lines, f"user{port}")
                   for port in (web_port, socket_port)]
        assert await daemon.terminate() == 0
        for client in clients:
            error = await client.expect("ERROR")
            assert "Server shutting down" in error.params[0]
            await client.wait_closed()
        log = daemon.log_text()
        assert f"tcp:{web_port}:interface=127.0.0.1 (web client)" in log
        assert f"tcp:{socket_port}:interface=127.0.0.1 (WebSocket)" in log
    finally:
        daemon.stop()


@ensure
async def test_web_listener_over_tls(tmp_path):
    """``--web ssl:...``: the page and a wss:// WebSocket, the same rules (a long line gets 417)."""
    from helpers import write_self_signed
    from twisted.internet import ssl

    from twistedchat.server.service import ChatService

    key, cert = write_self_signed(tmp_path)
    config = ServerConfig(name="tls.web", ports=["tcp:0:interface=127.0.0.1"],
                          web=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
    chat = ChatService(config)
    chat.privilegedStartService()
    chat.startService()
    try:
        port = chat.ports[1].getHost().port
        assert len(chat.tls) == 1  # a reload (SIGHUP) re-reads this listener's certificate too
        context = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(cert.read_text()))
        client = (await open_websocket(port, tls=context)).lines
        client.send("NICK secure", "USER secure 0 * :Secure")
        await client.expect("001")
        client.send("PRIVMSG secure :" + "x" * 600)
        await client.expect("417")
        (link,) = chat.factory.connections
        assert link.direct is None  # never the raw socket under TLS
        client.send("PING :tls")
        await client.expect("PONG", None, "tls")
        client.close()
        await client.wait_closed()
    finally:
        await chat.stopService()


@ensure
@pytest.mark.parametrize("web_server", [{"proxies": ("127.0.0.1",)}], indirect=True)
async def test_dlines_and_cloaks_hold_for_websocket_clients(web_server):
    """A D-lined forwarded address is refused on open; the others see a cloak (issue 16)."""
    from twistedchat.server.bans import DLINE

    web_server.factory.config.cloak_hosts = True
    web_server.factory.core.bans.add(DLINE, "198.51.100.0/24", "web range", "op", 0.0)
    refused = (await web_server.websocket(headers={"X-Forwarded-For": "198.51.100.9"})).lines
    error = await refused.expect("ERROR")
    assert "D-lined: web range" in error.params[0]
    await refused.wait_closed()
    client = await web_server.register_websocket(
        "cloaked", headers={"X-Forwarded-For": "203.0.113.8"})
    client.send("WHOIS cloaked")
    assert (await client.expect("311")).params[3].endswith(".ip")
    client.close()
