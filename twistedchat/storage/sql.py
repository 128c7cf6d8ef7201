"""The SQL store: SQLite (WAL) or PostgreSQL (psycopg 3) through ``twisted.enterprise.adbapi``.

Changes are written behind (:mod:`~twistedchat.storage.sql_writes`): the server's synchronous calls
queue them, and one transaction per ``flush_interval`` writes everything queued. Reads, here, first
wait for the writes queued before them, then run in the pool's threads. The SQL of each record is
in :mod:`~twistedchat.storage.sql_records`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.storage.history import (
    MAX_QUERY_LIMIT,
    HistoryQuery,
    RecentLines,
    TargetActivity,
    pick_targets,
    run_query,
    to_ms,
)
from twistedchat.storage.migrations import MIGRATIONS, Migration, apply_migrations
from twistedchat.storage.model import HistoryLine, StoreError
from twistedchat.storage.sql_records import POSTGRESQL as POSTGRESQL  # re-exported
from twistedchat.storage.sql_records import SQLITE as SQLITE  # re-exported
from twistedchat.storage.sql_records import Dialect, SQLReader, load_records
from twistedchat.storage.sql_writes import WriteBehindStore

log = Logger()

#: A read meets at most one dead connection per pool thread after a database restart.
READ_ATTEMPTS = 5
#: Most queued history reads one pool interaction answers (one thread hop, one wake-up).
READS_PER_INTERACTION = 32


def sqlite_setup(connection: Any) -> None:
    """Per connection: WAL (readers never wait for the writer), durable-on-commit against crashes."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=10000")


def sqlite_pool(path: str) -> adbapi.ConnectionPool:
    """A pool of SQLite connections to ``path`` (one per pool thread)."""
    return adbapi.ConnectionPool(
        "sqlite3", os.path.abspath(path), check_same_thread=False, cp_min=1, cp_max=3,
        cp_openfun=sqlite_setup, cp_noisy=False,
    )


def postgresql_pool(url: str) -> adbapi.ConnectionPool:
    """A pool of psycopg 3 connections to a ``postgresql://`` URL (libpq syntax)."""
    return adbapi.ConnectionPool(
        "psycopg", url, cp_min=1, cp_max=4, cp_reconnect=True, cp_noisy=False
    )


def _run_reads(txn: Any, works: list[Any]) -> list[Any]:
    """Run each read on one transaction; a read the store refuses (``StoreError``: an unknown
    msgid) fails alone, anything else (the database) fails them all."""
    results: list[Any] = []
    for work in works:
        try:
            results.append(work(txn))
        except StoreError:
            results.append(Failure())
    return results


class SQLStore(WriteBehindStore):
    """A store on an adbapi pool; build it with ``SQLStore.open``."""

    def __init__(
        self,
        pool: adbapi.ConnectionPool,
        dialect: Dialect,
        clock: IReactorTime,
        flush_interval: float = 0.005,
        retry_delay: float = 1.0,
        recent_lines: int = 100,
        recent_conversations: int = 1000,
    ) -> None:
        super().__init__(pool, dialect, clock, flush_interval, retry_delay)
        self._recent = RecentLines(recent_lines, recent_conversations)
        #: history reads waiting for a pool interaction: (work, its Deferred)
        self._queued_reads: list[tuple[Any, Deferred[Any]]] = []
        self._read_interactions = 0
        #: pool interactions reading history at once; a thread is left for the writes
        self.max_read_interactions = max(1, pool.max - 1)

    @classmethod
    def open(
        cls,
        pool: adbapi.ConnectionPool,
        dialect: Dialect,
        clock: IReactorTime,
        migrations: Sequence[Migration] = MIGRATIONS,
        **options: Any,
    ) -> Deferred[SQLStore]:
        """Migrate the schema, load accounts, nicks and channels, and return the ready store.

        Fails with ``SchemaTooNew`` (and closes the pool) for a database newer than this code.
        """
        store = cls(pool, dialect, clock, **options)

        def failed(failure: Any) -> Any:
            pool.close()
            return failure

        d = pool.runInteraction(apply_migrations, dialect.types, migrations)
        d.addCallback(lambda _: pool.runInteraction(store._load))
        d.addCallback(lambda _: store)
        d.addErrback(failed)
        return d

    # -- loading ------------------------------------------------------------------------------
    def _load(self, txn: Any) -> None:
        load_records(txn, self._accounts, self._nicks, self._channels)

    def append_history(self, line: HistoryLine) -> None:
        super().append_history(line)
        self._recent.append(line)

    # -- reading ------------------------------------------------------------------------------
    def owner_data(self, owner: str) -> Deferred[tuple[dict[str, str], dict[str, str]]]:
        q = self._dialect.q

        def read(txn: Any) -> tuple[dict[str, str], dict[str, str]]:
            txn.execute(q("SELECT key, value FROM owner_metadata WHERE owner = ?"), (owner,))
            metadata = dict(txn.fetchall())
            txn.execute(q("SELECT target, stamp FROM read_markers WHERE owner = ?"), (owner,))
            return metadata, dict(txn.fetchall())

        return self._after_writes(read)

    def _after_writes(self, work: Any, *args: Any) -> Deferred[Any]:
        """Run ``work(txn, *args)`` in the pool once the writes queued before now are done."""
        return self._caught_up().addCallback(lambda _: self._read(work, args, READ_ATTEMPTS))

    def _read(self, work: Any, args: tuple[Any, ...], attempts: int) -> Deferred[Any]:
        """A read, tried again when its pooled connection turns out dead (the database
        restarted): adbapi's failed rollback drops that connection and the driver's
        OperationalError comes back, so the next try gets a fresh one."""

        def lost(failure: Failure) -> Any:
            failure.trap(adbapi.ConnectionLost, self._pool.dbapi.OperationalError)
            if attempts <= 1:
                return failure
            return self._read(work, args, attempts - 1)

        return self._pool.runInteraction(work, *args).addErrback(lost)

    def _batched_read(self, work: Any) -> Deferred[Any]:
        """``work(txn)`` once the writes queued before now are done, in one pool interaction with
        the other history reads queued meanwhile (up to ``READS_PER_INTERACTION``)."""

        def queue(_: None) -> Deferred[Any]:
            done: Deferred[Any] = Deferred()
            self._queued_reads.append((work, done))
            self._start_reads()
            return done

        return self._caught_up().addCallback(queue)

    def _start_reads(self) -> None:
        """Hand the queued reads to the pool, up to ``max_read_interactions`` batches at once
        (once the store is closed they fail: its pool would never run them)."""
        if self._closed:
            queued, self._queued_reads = self._queued_reads, []
            for _, done in queued:
                done.errback(StoreError("the store is closed"))
            return
        while self._queued_reads and self._read_interactions < self.max_read_interactions:
            batch = self._queued_reads[:READS_PER_INTERACTION]
            del self._queued_reads[:READS_PER_INTERACTION]
            self._read_interactions += 1
            works = [work for work, _ in batch]
            d = self._read(_run_reads, (works,), READ_ATTEMPTS)
            d.addBoth(self._reads_done, [done for _, done in batch])

    def _reads_done(self, results: Any, waiting: list[Deferred[Any]]) -> None:
        self._read_interactions -= 1
        self._start_reads()
        if isinstance(results, Failure):  # the database failed: every read of the batch did
            for done in waiting:
                done.errback(results)
            return
        for done, result in zip(waiting, results, strict=True):
            if isinstance(result, Failure):
                done.errback(result)
            else:
                done.callback(result)

    def history(self, conversation: str, query: HistoryQuery) -> Deferred[list[HistoryLine]]:
        if query.subcommand == "LATEST" and query.start is None and self._recent.depth > 0:
            return self._latest(conversation, min(query.limit, MAX_QUERY_LIMIT))
        at_hand = self._recent.covered(conversation, query)
        if at_hand is not None:
            return succeed(at_hand)
        return self._batched_read(
            lambda txn: run_query(SQLReader(txn, self._dialect), conversation, query)
        )

    def _latest(self, conversation: str, limit: int) -> Deferred[list[HistoryLine]]:
        """``LATEST *`` from the recent lines when they cover it, else from the database
        (keeping what it returns for the next time)."""
        cached = self._recent.latest(conversation, limit)
        if cached is not None:
            return succeed(cached)
        asked = min(max(self._recent.depth, limit), MAX_QUERY_LIMIT)
        self._recent.loading(conversation)

        def read(txn: Any) -> list[HistoryLine]:
            reader = SQLReader(txn, self._dialect)
            return reader.span(conversation, None, None, asked, newest=True)

        def loaded(lines: list[HistoryLine]) -> list[HistoryLine]:
            self._recent.loaded(conversation, lines, asked)
            return lines[-limit:]

        def failed(failure: Any) -> Any:
            self._recent.abandon(conversation)
            return failure

        return self._batched_read(read).addCallbacks(loaded, failed)

    def _targets(
        self, channels: set[str], account: str | None, start: float, end: float, limit: int
    ) -> Deferred[list[TargetActivity]]:
        low, high = sorted((to_ms(start), to_ms(end)))
        who: list[str] = []
        params: list[str | int] = [low, high]
        if channels:
            who.append(f"conversation IN ({', '.join('?' * len(channels))})")
            params += list(channels)
        if account is not None:
            who.append("party_a = ? OR party_b = ?")
            params += [account, account]
        if not who:
            return succeed([])
        sql = self._dialect.q(
            "SELECT m.conversation, m.target, m.party_a, m.party_b, m.at_ms FROM messages m JOIN "
            "(SELECT conversation, MAX(at_ms) AS latest FROM messages "
            f"WHERE at_ms > ? AND at_ms < ? AND ({' OR '.join(who)}) GROUP BY conversation) l "
            "ON m.conversation = l.conversation AND m.at_ms = l.latest"
        )

        def query(txn: Any) -> list[TargetActivity]:
            txn.execute(sql, params)
            found: dict[str, TargetActivity] = {}
            for conversation, target, party_a, party_b, at_ms in txn.fetchall():
                parties = None if party_a is None else (party_a, party_b)
                found[conversation] = TargetActivity(conversation, target, parties, at_ms / 1000)
            return pick_targets(found.values(), start, end, limit)

        return self._after_writes(query)

    def prune_history(
        self, now: float, days: float | None, lines_per_conversation: int | None
    ) -> Deferred[int]:
        q = self._dialect.q

        self._recent.clear()

        def prune(txn: Any) -> int:
            dropped = 0
            if days is not None:
                txn.execute(q("DELETE FROM messages WHERE at_ms < ?"), (to_ms(now - days * 86400),))
                dropped += max(txn.rowcount, 0)
            if lines_per_conversation is not None:
                txn.execute(
                    q(
                        "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, "
                        "ROW_NUMBER() OVER (PARTITION BY conversation ORDER BY at_ms DESC, seq DESC) "
                        "AS newer FROM messages) ranked WHERE newer > ?)"
                    ),
                    (lines_per_conversation,),
                )
                dropped += max(txn.rowcount, 0)
            return dropped

        def pruned(dropped: int) -> int:
            self._recent.clear()
            return dropped

        return self._after_writes(prune).addCallback(pruned)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> Deferred[None]:
        def closed(result: Any) -> None:
            if isinstance(result, Failure):
                log.error(
                    "storage: closing with {count} changes unwritten (no flush within {timeout} s)",
                    count=self._queued - self._written, timeout=timeout,
                )
            self._closed = True
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            self._pool.close()

        flushed = self.flush()
        if timeout is not None:
            flushed.addTimeout(timeout, self._clock)
        return flushed.addBoth(closed)
