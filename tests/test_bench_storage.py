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
