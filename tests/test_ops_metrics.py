"""``--metrics``: Prometheus text at /metrics and /health, scraped over loopback."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from helpers import connect
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from twistedchat.server.config import ServerConfig
from twistedchat.server.service import ChatService


async def get(url: str) -> tuple[int, bytes]:
    response = await Agent(reactor).request(b"GET", url.encode())
    return response.code, await readBody(response)


def samples(text: bytes) -> dict[str, float]:
    return {sample.name + (str(sorted(sample.labels.items())) if sample.labels else ""):
            sample.value
            for family in text_string_to_metric_families(text.decode())
            for sample in family.samples}


# Agent's response body on this reactor's transports lacks abortConnection; harmless here.
@pytest.mark.filterwarnings("ignore:Using readBody with a transport")
@pytest_twisted.ensureDeferred
async def test_metrics_and_health_are_served_from_live_state():
    config = ServerConfig(name="metrics.test", ports=["tcp:0:interface=127.0.0.1"],
                          metrics="tcp:0:interface=127.0.0.1", max_clients=50)
    chat = ChatService(config, reactor=reactor)
    chat.privilegedStartService()
    chat.startService()
    try:
        chat_port = chat.ports[0].getHost().port
        assert chat.metrics_port is not None
        base = f"http://127.0.0.1:{chat.metrics_port.getHost().port}"

        code, body = await get(base + "/metrics")
        assert code == 200
        before = samples(body)
        assert before["twistedchat_connections"] == 0
        assert before["twistedchat_channels"] == 0

        alice = await connect(f"tcp:127.0.0.1:{chat_port}")
        alice.send("NICK alice", "USER a 0 * :A", "JOIN #one", "JOIN #two")
        await alice.expect("366", "alice", "#two")
        alice.send("PRIVMSG #one :hello", "PRIVMSG #two :hello")
        await alice.sync()
        lurker = await connect(f"tcp:127.0.0.1:{chat_port}")  # connected, never registers

        code, body = await get(base + "/metrics")
        now = samples(body)
        assert now["twistedchat_connections"] == 2
        assert now["twistedchat_registered_users"] == 1
        assert now["twistedchat_channels"] == 2
        assert now["twistedchat_max_clients"] == 50
        assert now["twistedchat_operators"] == 0
        assert now["twistedchat_uptime_seconds"] >= 0
        assert any(key.startswith("twistedchat_info[") for key in now)
        assert "process_open_fds" in now  # the process collector is there too
        assert now["twistedchat_relayed_lines_total[('command', 'JOIN')]"] == 2
        assert now["twistedchat_relayed_lines_total[('command', 'PRIVMSG')]"] == 2

        assert chat.reload() == ([], [])  # built in code: a reload keeps its settings
        assert config.max_clients == 50
        code, body = await get(base + "/metrics")
        assert samples(body)["twistedchat_config_reloads_total[('result', 'ok')]"] == 1

        code, body = await get(base + "/health")
        assert code == 200
        assert json.loads(body) == {"status": "ok", "connections": 2, "listeners": 1}
        alice.send("QUIT")
        await alice.wait_closed()
        lurker.transport.loseConnection()
        await lurker.wait_closed()
    finally:
        await chat.stopService()


def test_health_is_503_when_not_listening():
    from twisted.web.test.requesthelper import DummyRequest

    from twistedchat.server.metrics import HealthResource

    chat = ChatService(ServerConfig(ports=["tcp:0:interface=127.0.0.1"]), reactor=reactor)
    request = DummyRequest([b""])
    body = HealthResource(chat).render_GET(request)
    assert request.responseCode == 503
    assert json.loads(body)["status"] == "unavailable"
