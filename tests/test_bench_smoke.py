"""The bench harness at tiny size, so it doesn't rot: it runs, and its table has sane figures.

No timing assertions: only that every figure that must be there is there and non-zero, and that
no message was lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
