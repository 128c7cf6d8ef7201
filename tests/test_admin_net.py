"""Administration through the real daemon over loopback: OPER in a thread, bans at connect, cloaks."""

from __future__ import annotations

import pytest
import pytest_twisted
from helpers import LineClient
from twisted.internet import endpoints, reactor
from twisted.web.client import Agent, readBody

from twistedchat.server.config import OperAccount, ServerConfig
from twistedchat.server.opers import hash_password
from twistedchat.server.service import ChatService

PASSWORD = "correct horse"


def start(tmp_path, **settings) -> ChatService:
    config = ServerConfig(
        name="admin.test", ports=["tcp:0:interface=127.0.0.1"], bans_file=str(tmp_path / "bans"),
        cloak_secret="loopback secret", max_per_ip=0,
        oper_accounts={"alice": OperAccount("alice", hash_password(PASSWORD), ("*@127.0.0.1",))},
        **settings)
    chat = ChatService(config, reactor=reactor)
    chat.privilegedStartService()
    chat.startService()
    return chat


async def connect_from(chat: ChatService, source: str = "127.0.0.1") -> LineClient:
    port = chat.ports[0].getHost().port
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port,
                                            bindAddress=(source, 0))
    client = LineClient()
    await endpoints.connectProtocol(endpoint, client)
    return client


async def registered(chat: ChatService, nick: str, source: str = "127.0.0.1") -> LineClient:
    client = await connect_from(chat, source)
    client.nick = nick
    client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    await client.expect("001")
    await client.expect(where=lambda m: m.command in ("376", "422"))
    return client


@pytest_twisted.ensureDeferred
async def test_oper_password_checked_in_a_thread_with_later_lines_kept_in_order(tmp_path):
    chat = start(tmp_path)
    try:
        alice = await registered(chat, "alice")
        # Sent in one write: the WHOIS and PING must be answered after OPER's 381, not before.
        alice.send("OPER alice :" + PASSWORD, "WHOIS alice", "PING :after")
        await alice.expect("PONG", None, "after")
        order = [m.command for m in alice.messages if m.command in ("381", "311", "PONG")]
        assert order == ["381", "311", "PONG"]
        assert chat.factory.core.state.find_user("alice").is_oper
    finally:
        await chat.stopService()


@pytest_twisted.ensureDeferred
async def test_dline_removes_users_refuses_at_connect_and_survives_a_restart(tmp_path):
    chat = start(tmp_path)
    try:
        oper = await registered(chat, "oper")
        oper.send("OPER alice :" + PASSWORD)
        await oper.expect("381")
        victim = await registered(chat, "victim", source="127.0.0.2")
        oper.send("DLINE 30 127.0.0.2 :go away", "KLINE *@192.0.2.* :range")
        await oper.expect(where=lambda m: "1 connection(s) removed" in m.params[-1])
        await victim.expect("465")
        error = await victim.expect("ERROR")
        assert "go away" in error.params[0]
        await victim.wait_closed()
        again = await connect_from(chat, "127.0.0.2")
        await again.expect("465")
        await again.expect("ERROR")
        await again.wait_closed()
        assert chat.factory.core.counters["bans_hit"] == 2
    finally:
        await chat.stopService()
    restarted = start(tmp_path)
    try:
        masks = {ban.mask for ban in restarted.factory.core.bans.all()}
        assert masks == {"127.0.0.2/32", "*@192.0.2.*"}
        refused = await connect_from(restarted, "127.0.0.2")
        await refused.expect("465")
        await refused.wait_closed()
    finally:
        await restarted.stopService()


@pytest_twisted.ensureDeferred
async def test_cloaked_prefixes_over_the_wire(tmp_path):
    chat = start(tmp_path)
    try:
        alice = await registered(chat, "alice")
        bob = await registered(chat, "bob")
        alice.send("JOIN #c")
        await alice.expect("366")
        bob.send("JOIN #c")
        await bob.expect("366")
        alice.send("PRIVMSG #c :hello")
        said = await bob.expect("PRIVMSG")
        assert "127.0.0.1" not in said.source and said.source.endswith(".ip")
        assert b"127.0.0.1" not in b"".join(bob.raw)
    finally:
        await chat.stopService()


@pytest.mark.filterwarnings("ignore:Using readBody with a transport")
@pytest_twisted.ensureDeferred
async def test_rehash_reloads_and_metrics_count_drops_and_bans(tmp_path):
    config_file = tmp_path / "chat.toml"
    config_file.write_text('name = "admin.test"\nmax-per-ip = 0\nmotd = "motd.txt"\n')
    (tmp_path / "motd.txt").write_text("first\n")
    config = ServerConfig(name="admin.test", ports=["tcp:0:interface=127.0.0.1"],
                          metrics="tcp:0:interface=127.0.0.1", config_file=str(config_file),
                          opers={"root": "pw"}, max_per_ip=0)
    chat = ChatService(config, reactor=reactor, overrides={
        "ports": config.ports, "metrics": config.metrics, "opers": {"root": "pw"}})
    chat.privilegedStartService()
    chat.startService()
    try:
        oper = await registered(chat, "oper")
        oper.send("OPER root pw")
        await oper.expect("381")
        (tmp_path / "motd.txt").write_text("second\n")
        oper.send("REHASH")
        await oper.expect("382")
        await oper.expect(where=lambda m: m.command == "NOTICE" and "motd text" in m.params[-1])
        assert chat.config.motd == ["second"]
        oper.send("DLINE 127.0.0.3 :x")
        await oper.expect("NOTICE")
        refused = await connect_from(chat, "127.0.0.3")
        await refused.wait_closed()
        url = f"http://127.0.0.1:{chat.metrics_port.getHost().port}/metrics"
        response = await Agent(reactor).request(b"GET", url.encode())
        body = (await readBody(response)).decode()
        assert "twistedchat_bans_hit_total 1.0" in body
        assert "twistedchat_flood_drops_total 0.0" in body
    finally:
        await chat.stopService()


def proxy_v2_header(source: str, port: int) -> bytes:
    """A binary PROXY protocol v2 header (PROXY command, TCP) for ``source``."""
    import ipaddress
    import struct

    address = ipaddress.ip_address(source)
    if address.version == 4:
        family, body = 0x11, address.packed + ipaddress.ip_address("127.0.0.1").packed
    else:
        family, body = 0x21, address.packed + ipaddress.ip_address("::1").packed
    body += struct.pack("!HH", 40000, port)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


@pytest.mark.parametrize("source", ["198.51.100.7", "2001:db8::7"])
@pytest_twisted.ensureDeferred
async def test_proxy_protocol_v2_gives_the_real_address(tmp_path, source):
    config = ServerConfig(name="proxy.test", ports=["haproxy:tcp:0:interface=127.0.0.1"],
                          cloak_secret="s", bans_file=str(tmp_path / "bans"))
    chat = ChatService(config, reactor=reactor)
    chat.privilegedStartService()
    chat.startService()
    try:
        port = chat.ports[0].getHost().port
        client = LineClient()
        await endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        client.transport.write(proxy_v2_header(source, port)
                               + b"NICK viaproxy\r\nUSER v 0 * :V\r\nWHOIS viaproxy\r\n")
        host = await client.expect("378")
        assert host.params[-1].endswith(f"@{source} {source}")
        user = chat.factory.core.state.find_user("viaproxy")
        assert user.real_host == source and user.host != user.real_host
    finally:
        await chat.stopService()


async def refused(chat: ChatService, source: str) -> str:
    """Connect from ``source``; the ERROR line the server refuses it with."""
    client = await connect_from(chat, source)
    error = await client.expect("ERROR")
    await client.wait_closed()
    return error.params[0]


async def admitted(chat: ChatService, source: str) -> LineClient:
    client = await connect_from(chat, source)
    client.send("PING :in")
    await client.expect("PONG")
    return client


@pytest_twisted.ensureDeferred
async def test_connection_classes_limits_and_exemption(tmp_path):
    from twistedchat.server.classes import ConnectionClass

    chat = start(tmp_path, max_per_cidr=3, classes=(
        ConnectionClass("school", ("127.0.0.64/26",), exempt=True),
        ConnectionClass("strict", ("127.0.0.0/26",), max_per_ip=1),
        ConnectionClass("loose", ("127.0.0.0/8",), max_per_ip=2),
    ))
    chat.config.max_per_ip = 0
    try:
        first = await admitted(chat, "127.0.0.10")  # strict: one per address
        assert "Too many connections from your address" in await refused(chat, "127.0.0.10")
        group = [await admitted(chat, "127.0.0.11"), await admitted(chat, "127.0.0.12")]
        # three in 127.0.0.0/24 now: the fourth address in that /24 is refused (per CIDR)
        assert "from your network" in await refused(chat, "127.0.0.13")
        nat = [await admitted(chat, "127.0.0.70") for _ in range(5)]  # exempt: no limit
        two = [await admitted(chat, "127.0.1.200") for _ in range(2)]  # loose: two each
        assert "from your address" in await refused(chat, "127.0.1.200")
        for client in [first, *group, *nat, *two]:
            client.close()
    finally:
        await chat.stopService()


@pytest_twisted.ensureDeferred
async def test_connect_throttle_refuses_a_fast_reconnector(tmp_path):
    chat = start(tmp_path, throttle_count=2, throttle_window=60.0, throttle_duration=300.0)
    try:
        for _ in range(2):
            client = await admitted(chat, "127.0.0.20")
            client.close()
            await client.wait_closed()
        assert "recently" in await refused(chat, "127.0.0.20")
        other = await admitted(chat, "127.0.0.21")  # another address is not affected
        other.close()
        assert chat.factory.core.counters["throttled"] == 1
    finally:
        await chat.stopService()


def test_reload_replaces_classes_webirc_oper_classes_and_the_bans_file(tmp_path):
    from twistedchat.server.config import load_config

    path = tmp_path / "chat.toml"
    (tmp_path / "old-bans").write_text("D\t192.0.2.1/32\t0\t0\top\told\n")
    (tmp_path / "new-bans").write_text("K\t*@bad.example\t0\t0\top\tnew\n")
    path.write_text('bans-file = "old-bans"\n[[class]]\nname = "a"\nhosts = ["192.0.2.0/24"]\n')
    chat = ChatService(load_config(str(path)), reactor=reactor, overrides={})
    core = chat.factory.core
    assert [b.reason for b in core.bans.all()] == ["old"]
    path.write_text('bans-file = "new-bans"\n'
                    '[[class]]\nname = "b"\nhosts = ["198.51.100.0/24"]\nexempt = true\n'
                    '[[oper-class]]\nname = "helpers"\npermissions = ["kill"]\n'
                    '[[webirc]]\nname = "w"\npassword = "twelve chars!"\nhosts = ["192.0.2.9"]\n')
    changed, kept = chat.reload()
    assert {"bans-file", "[[class]]", "[[oper-class]]", "[[webirc]]"} <= set(changed)
    assert chat.config.classes[0].name == "b" and chat.config.webirc[0].name == "w"
    assert [b.reason for b in core.bans.all()] == ["new"]
    assert kept == []


def test_die_and_restart_stop_the_reactor_and_tell_clients_why():
    from twisted.internet.testing import MemoryReactorClock

    fake = MemoryReactorClock()
    chat = ChatService(ServerConfig(name="die.test"), reactor=fake)
    chat.stop_server("Server shutting down (root: upgrade)", restart=False)
    fake.advance(0)
    assert fake.hasStopped and chat.stop_reason == "Server shutting down (root: upgrade)"
    assert not chat.restart_requested
    again = MemoryReactorClock()
    restarting = ChatService(ServerConfig(name="die.test"), reactor=again)
    restarting.stop_server("Server restarting (root)", restart=True)
    restarting.stop_server("Server restarting (root)", restart=True)  # once is enough
    triggers = again.triggers.get("after", {}).get("shutdown", [])
    assert len(triggers) == 1 and restarting.restart_requested


@pytest_twisted.ensureDeferred
async def test_oper_by_tls_client_certificate_fingerprint(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from helpers import write_self_signed
    from twisted.internet import ssl

    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    key, cert = write_self_signed(server_dir)
    client_key, client_cert = write_self_signed(client_dir)
    fingerprint = x509.load_pem_x509_certificate(client_cert.read_bytes()).fingerprint(
        hashes.SHA256()).hex()
    accounts = {"certified": OperAccount("certified", hash_password(PASSWORD), ("*@*",),
                                         fingerprints=(fingerprint,))}
    # Self-signed client certificates ("CertFP") need Twisted's engine: Python's ssl module only
    # accepts client certificates that chain to a configured CA.
    config = ServerConfig(name="tls.admin", oper_accounts=accounts, cloak_secret="s",
                          tls_engine="twisted",
                          ports=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
    chat = ChatService(config, reactor=reactor)
    chat.privilegedStartService()
    chat.startService()
    try:
        port = chat.ports[0].getHost().port
        trust = ssl.Certificate.loadPEM(cert.read_text())

        async def tls_client(nick: str, with_certificate: bool) -> LineClient:
            identity = (ssl.PrivateCertificate.loadPEM(client_key.read_text()
                                                      + client_cert.read_text())
                        if with_certificate else None)
            options = ssl.optionsForClientTLS("localhost", trust, identity)
            client = LineClient()
            await endpoints.connectProtocol(
                endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, options), client)
            client.nick = nick
            client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
            await client.expect("001")
            return client

        without = await tls_client("plain", with_certificate=False)
        without.send("OPER certified :" + PASSWORD)
        await without.expect("491", timeout=10)
        holder = await tls_client("holder", with_certificate=True)
        holder.send("OPER certified :" + PASSWORD)
        await holder.expect("381")
    finally:
        await chat.stopService()
