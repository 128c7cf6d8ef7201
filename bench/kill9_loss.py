"""How much history ``kill -9`` loses: the write-behind interval, measured (issue 10, "Nothing lost").

A child process opens the store and appends lines at ``--rate`` lines/s (in 1 ms ticks, as a busy
server would), counting every line handed to the store in a shared memory page. The parent kills it with
SIGKILL at a random moment, then reopens the database: the lines counted but not stored are what a
crash loses. Repeated ``--runs`` times; prints each run and the worst, in lines and milliseconds.
The database is also checked for integrity (SQLite ``PRAGMA integrity_check``).

    python -m bench.kill9_loss                     # SQLite in a temp dir, 2,000 lines/s, 10 runs
    python -m bench.kill9_loss --db postgresql://...
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

COUNTER = struct.Struct("<q")


def child(url: str, counter_path: str, rate: float, flush_interval: float) -> None:
    """Append lines forever, counting each in the shared page after the store has taken it."""
    from twisted.internet import reactor, task

    from twistedchat.storage import HistoryLine, channel_conversation, open_store

    with open(counter_path, "r+b") as handle:
        counter = mmap.mmap(handle.fileno(), COUNTER.size)
    conversation = channel_conversation("#crash")
    appended = 0

    def tick(store) -> None:
        nonlocal appended
        for _ in range(max(1, int(rate / 1000))):
            store.append_history(
                HistoryLine(f"line-{appended}", time.time(), conversation, "#crash", "w!u@h", "PRIVMSG", "x" * 80)
            )
            appended += 1
            counter[:] = COUNTER.pack(appended)

    def started(store) -> None:
        print("ready", flush=True)
        task.LoopingCall(tick, store).start(0.001)

    open_store(url, flush_interval=flush_interval).addCallback(started)
    reactor.run()


def stored_lines(url: str) -> tuple[int, str]:
    """Lines in the database after the crash, and its integrity check's answer."""
    if url.startswith("sqlite:"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite:") :]) as connection:
            check = connection.execute("PRAGMA integrity_check").fetchone()[0]
            return connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0], check
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0], "n/a"


def empty(url: str) -> None:
    if url.startswith("sqlite:"):
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(url[len("sqlite:") :] + suffix)
            except FileNotFoundError:
                pass
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS messages, accounts, nicks, channels, "
                           "channel_access, channel_bans, owner_metadata, read_markers, "
                           "schema_migrations")


def run(url: str, rate: float, flush_interval: float) -> tuple[int, int, str]:
    """One crash: (lines handed to the store, lines found stored, integrity)."""
    empty(url)
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        handle.write(bytes(COUNTER.size))
        counter_path = handle.name
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.kill9_loss", "--child", url, counter_path, str(rate), str(flush_interval)],
        stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(random.uniform(1.0, 2.0))  # a random moment mid-traffic
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with open(counter_path, "rb") as handle:
        (appended,) = COUNTER.unpack(handle.read(COUNTER.size))
    os.remove(counter_path)
    stored, integrity = stored_lines(url)
    return appended, stored, integrity


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a --db URL (default: SQLite in a temp dir)")
    parser.add_argument("--rate", type=float, default=2000.0, help="lines appended per second")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--flush-interval", type=float, default=0.005)
    options = parser.parse_args()
    url = options.db or f"sqlite:{os.path.join(tempfile.mkdtemp(prefix='kill9-'), 'crash.sqlite3')}"
    print(f"{url}, {options.rate:.0f} lines/s, flush interval {options.flush_interval * 1000:.0f} ms")
    worst = 0
    for number in range(options.runs):
        appended, stored, integrity = run(url, options.rate, options.flush_interval)
        lost = appended - stored
        worst = max(worst, lost)
        print(f"run {number + 1}: appended {appended}, stored {stored}, lost {lost} "
              f"({lost / options.rate * 1000:.0f} ms of traffic), integrity {integrity}")
    print(f"worst: {worst} lines = {worst / options.rate * 1000:.0f} ms of traffic")


if __name__ == "__main__":
    main()
