"""The storage benchmarks still run: history reads through a store, and a real kill -9 mid-traffic."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from bench import history_reads, kill9_loss
from twistedchat.storage.memory import MemoryStore


@pytest_twisted.ensureDeferred
async def test_history_reads_measures_full_latest_reads():
    store = MemoryStore()
    history_reads.fill(store, 300, 1_700_000_000.0)
    done, elapsed = await history_reads.measure(
        reactor, store, history_reads.LATEST_100, 0.02, 2, 0.0
    )
    assert done > 0 and elapsed > 0  # every read returned 100 lines (measure asserts it)


def test_sqlite_is_intact_after_kill_9_mid_traffic(tmp_path):
    appended, stored, integrity = kill9_loss.run(f"sqlite:{tmp_path / 'crash.sqlite3'}", 2000.0, 0.005)
    assert integrity == "ok"
    assert 0 < stored <= appended  # what was written is there; nothing appears twice


@pytest_twisted.ensureDeferred
async def test_chathistory_daemon_bench_counts_whole_answers_of_every_workload(tmp_path):
    from bench import chathistory_daemon

    args = chathistory_daemon.parse(
        ["--db", f"sqlite:{tmp_path / 'bench.sqlite3'}", "--channels", "3", "--lines", "100",
         "--clients", "2", "--seconds", "0.3"]
    )
    results = await chathistory_daemon.run(reactor, args)
    assert [r["workload"] for r in results] == ["window", "database", "reconnect"]
    for counts, size in zip(results, [100, 100, 29], strict=True):
        assert counts["batches"] > 0
        # whole answers (and the lines of the one in flight when it stopped)
        assert size * counts["batches"] <= counts["lines"] <= size * (counts["batches"] + 1)
