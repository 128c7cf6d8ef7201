"""How many CHATHISTORY LATEST 100 reads per second the SQLite store answers (issue 10: 10,000/s).

One process, the default reactor: a conversation of ``--lines`` stored lines, then ``--concurrency``
reads in flight through ``Store.history`` for ``--seconds``; prints reads/s and lines/s, each
phase once without and once with ``--write-rate`` lines per second appended (write-behind running).
Phases: ``LATEST *`` as the server answers it (the recent lines kept in memory, the database only
on a miss); ``LATEST *`` with that memory off (every read a database query in the pool's threads);
``BEFORE msgid=`` 100 (scrolling back: always the database).

    python -m bench.history_reads                   # defaults: 20,000 lines, 8 in flight, 5 s
    python -m bench.history_reads --db postgresql://...   # the same against PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from twisted.internet import defer, task

from twistedchat.storage import (
    HistoryLine,
    HistoryQuery,
    Selector,
    channel_conversation,
    open_store,
)

CONVERSATION = channel_conversation("#bench")
LATEST_100 = HistoryQuery("LATEST", None, 100)


def fill(store, lines: int, start: float) -> None:
    for n in range(lines):
        store.append_history(
            HistoryLine(
                f"fill-{n}", start + n / 100, CONVERSATION, "#bench", f"u{n % 50}!u@h", "PRIVMSG",
                f"line {n} of the benchmark conversation, about as long as a chat line is",
            )
        )


async def measure(
    reactor, store, query: HistoryQuery, seconds: float, concurrency: int, write_rate: float
) -> tuple[int, float]:
    """Reads completed in ``seconds`` with ``concurrency`` in flight (and optional writes)."""
    done = 0
    deadline = time.perf_counter() + seconds
    writer = None
    if write_rate:
        counter = iter(range(10**9))

        def write_some() -> None:
            for _ in range(max(1, int(write_rate / 100))):
                n = next(counter)
                store.append_history(
                    HistoryLine(f"live-{n}", time.time(), CONVERSATION, "#bench", "w!u@h", "PRIVMSG", f"live {n}")
                )

        writer = task.LoopingCall(write_some)
        writer.start(0.01)

    async def reader() -> None:
        nonlocal done
        while True:  # at least one read each, however late a loaded machine starts the reader
            lines = await store.history(CONVERSATION, query)
            assert len(lines) == 100
            done += 1
            if time.perf_counter() >= deadline:
                return

    started = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(reader()) for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    if writer is not None:
        writer.stop()
    return done, elapsed


async def main(reactor, options) -> None:
    directory = tempfile.mkdtemp(prefix="history-bench-")
    url = options.db or f"sqlite:{os.path.join(directory, 'bench.sqlite3')}"
    store = await open_store(url)
    fill(store, options.lines, time.time() - options.lines / 100)
    await store.close()
    print(f"store {url}: {options.lines} lines in one conversation; {os.cpu_count()} CPUs")
    middle = HistoryQuery("BEFORE", Selector(msgid=f"fill-{options.lines // 2}"), 100)
    phases = [
        ("LATEST * 100, recent lines", {}, LATEST_100),
        ("LATEST * 100, database", {"recent_lines": 0}, LATEST_100),
        ("BEFORE msgid 100, database", {}, middle),
    ]
    for label, store_options, query in phases:
        store = await open_store(url, **store_options)
        for rate in (0.0, options.write_rate):
            done, elapsed = await measure(
                reactor, store, query, options.seconds, options.concurrency, rate
            )
            writes = f"+ {rate:5.0f} writes/s" if rate else ""
            print(
                f"{label:>28} {writes:>16}: "
                f"{done / elapsed:8.0f} reads/s ({done * 100 / elapsed:9.0f} lines/s, "
                f"{options.concurrency} in flight, {elapsed:.1f} s)"
            )
        await store.close()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a --db URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write-rate", type=float, default=1000.0)
    return parser.parse_args()


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse())))
