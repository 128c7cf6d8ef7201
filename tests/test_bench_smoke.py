"""The bench harness at tiny size, so it doesn't rot: it runs, and its table has sane figures.

No timing assertions: only that every figure that must be there is there and non-zero, and that
no message was lost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.servers import NGIRCD

REPO = Path(__file__).resolve().parent.parent


def run_quick_bench(tmp_path: Path, servers: list[str], *extra: str) -> tuple[str, dict]:
    readme, raw = tmp_path / "README.md", tmp_path / "results.json"
    readme.write_text("# Bench\n\nhand-written text stays\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--servers", ",".join(servers),
         "--readme", str(readme), "--json", str(raw), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return readme.read_text(), json.loads(raw.read_text())


def assert_sane(run: dict, clients: int) -> None:
    assert run["errors"] == []
    assert run["joined"] == run["registered"] == clients
    assert run["registered_per_s"] > 0 and run["rss_idle_bytes"] > 0
    fixed, saturation = run["fixed"], run["saturation"]
    for phase in (fixed, saturation):
        assert phase["sent"] > 0
        assert phase["received"] == phase["expected"] == phase["sent"] * (clients - 1)
        assert phase["lost"] == 0 and phase["disconnects"] == 0
        assert phase["deliveries_per_s"] > 0
        assert phase["latency_samples"] > 0
        assert 0 < phase["latency_p50_ms"] <= phase["latency_p99_ms"] <= phase["latency_max_ms"]
    assert fixed["latency_samples"] == fixed["received"]  # every fixed-rate message is stamped
    assert saturation["server_cpu_s"] > 0 and saturation["server_cpu_us_per_delivery"] > 0


def test_quick_bench_against_twistedchat(tmp_path: Path) -> None:
    servers = ["twistedchat"] + (["ngircd"] if os.path.exists(NGIRCD) else [])
    text, raw = run_quick_bench(tmp_path, servers)
    assert "hand-written text stays" in text
    assert "### 5 clients" in text
    assert "| figure | " + " | ".join(servers) + " |" in text
    assert "fixed: latency p99 (ms)" in text and "saturation: deliveries/s" in text
    for server in servers:
        (run,) = raw["runs"]["5"][server]
        assert_sane(run, 5)
    if "ngircd" in servers:
        assert "×)" in text  # twistedchat's cells carry their ratio to ngircd


def test_plain_reference_server_relays(tmp_path: Path) -> None:
    _, raw = run_quick_bench(tmp_path, ["plain-twisted"])
    (run,) = raw["runs"]["5"]["plain-twisted"]
    assert_sane(run, 5)


def test_quick_bench_over_tls(tmp_path: Path) -> None:
    """The TLS mode: the daemon's ssl: listener (and ngircd's [SSL] one), TLS clients, a
    handshake storm; its table goes between its own markers."""
    servers = ["twistedchat"] + (["ngircd"] if os.path.exists(NGIRCD) else [])
    text, raw = run_quick_bench(tmp_path, servers, "--tls")
    assert "hand-written text stays" in text
    assert "<!-- bench:tls:start -->" in text and "<!-- bench:results:start -->" not in text
    assert "TLS handshakes/s" in text and "### Targets (TLS)" in text
    for server in servers:
        (run,) = raw["runs"]["5"][server]
        assert_sane(run, 5)
        assert run["tls"] and run["tls_version"].startswith("TLSv1.")
        assert run["handshakes"] == 20 and run["handshake_failures"] == 0
        assert run["handshakes_per_s"] > 0


def test_quick_bench_with_half_the_clients_over_websocket(tmp_path: Path) -> None:
    """The generator's WebSocket clients (bench.loadgen --websocket-*) see every message too."""
    _, raw = run_quick_bench(tmp_path, ["twistedchat-ws"])
    (run,) = raw["runs"]["5"]["twistedchat-ws"]
    assert_sane(run, 5)


def test_quick_cluster_bench(tmp_path: Path) -> None:
    """`bench.cluster --quick`: one process, a 2-node network on a real redis-server and
    `--workers 2`, each under the same tiny load; every figure there, nothing lost."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed (scripts/system-deps.sh installs it)")
    readme, raw = tmp_path / "README.md", tmp_path / "results-cluster.json"
    readme.write_text("# Bench\n\nhand-written text stays\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--quick", "--write", "--readme", str(readme),
         "--json", str(raw)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = readme.read_text()
    assert "hand-written text stays" in text and "<!-- bench:cluster:start -->" in text
    assert "2-node CPU per delivery" in text and "| single | 2-nodes | workers-2 |" in text
    (runs,) = json.loads(raw.read_text())["loads"]["5x20"]
    assert set(runs) == {"single", "2-nodes", "workers-2"}
    for run in runs.values():
        assert_sane(run, 5)
        for phase in ("fixed", "saturation"):
            assert len(run[phase]["server_cpu_s_each"]) == len(run["labels"])
    assert runs["2-nodes"]["labels"] == ["node a", "node b", "redis"]
    assert runs["workers-2"]["labels"] == ["worker 1", "worker 2", "supervisor", "redis"]
    nodes = runs["2-nodes"]["fixed"]
    # Clients alternate between the nodes: deliveries inside each node and across the hop.
    assert nodes["latency_local_samples"] > 0 and nodes["latency_remote_samples"] > 0
    assert nodes["latency_local_samples"] + nodes["latency_remote_samples"] == nodes["received"]
    assert nodes["redis_script_calls"] > 0
    assert runs["single"]["fixed"]["redis_script_calls"] == 0
    assert runs["single"]["fixed"]["latency_remote_samples"] == 0
    # The saved figures render the same section again without measuring.
    from bench import cluster

    again = tmp_path / "again.md"
    assert cluster.main(["--from-json", str(raw), "--readme", str(again), "--write"]) == 0
    section = text.split("<!-- bench:cluster:start -->")[1]
    assert section == again.read_text().split("<!-- bench:cluster:start -->")[1]


def test_redis_cost_per_batch_is_measured(tmp_path: Path) -> None:
    """bench.cluster_apply --redis: the PUBLISH script, pipelined, to subscribed connections."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/system-deps.sh installs it)")
    from bench import cluster_apply

    result = cluster_apply.redis_cost(subscribers=2, per_batch=3, batches=120, cpu=None)
    assert result["batches"] == 120 and result["batches_per_s"] > 0
    assert result["redis_us_per_batch"] >= 0


def test_a_bystander_nodes_cost_is_measured() -> None:
    """bench.cluster_apply --bystander: a real node on a real Redis, lines as events or routed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/system-deps.sh installs it)")
    from bench import cluster_apply

    for routed in (False, True):
        result = cluster_apply.bystander_cost(routed, members=3, per_batch=2, lines=100, cpu=None)
        assert result["lines"] == 100 and result["routed"] is routed
        assert result["us_per_line"] >= 0 and result["seconds"] > 0
