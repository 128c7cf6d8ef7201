"""Writing behind: the server's synchronous calls queue changes, and one transaction per
``flush_interval`` writes them all (coalesced); a failed batch is kept and retried."""

from __future__ import annotations

from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.storage.base import Store
from twistedchat.storage.model import HistoryLine
from twistedchat.storage.sql_records import LINE_COLUMNS, Dialect, line_row, write_change

log = Logger()


class WriteBehindStore(Store):
    """A store whose changes queue up and go to an adbapi pool in batched transactions."""

    def __init__(
        self,
        pool: adbapi.ConnectionPool,
        dialect: Dialect,
        clock: IReactorTime,
        flush_interval: float = 0.005,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._dialect = dialect
        self._clock = clock
        self.flush_interval = flush_interval
        self.retry_delay = retry_delay
        #: (kind, key) -> latest value (None: deleted), in the order first changed
        self._pending: dict[tuple[str, Any], Any] = {}
        self._pending_lines: list[HistoryLine] = []
        #: changes queued so far, and how many of those are known written (a watermark)
        self._queued = 0
        self._written = 0
        self._waiters: list[tuple[int, Deferred[None]]] = []
        self._timer: Any = None
        self._writing = False
        #: a batch failed and waits ``retry_delay`` before the next try
        self._retrying = False
        #: the next batch goes change by change (the last one held a record the database refused)
        self._careful = False
        self._closed = False

    def _changed(self, kind: str, key: Any, value: Any) -> None:
        if kind == "owner":
            # Everything of the owner queued before is moot; the delete comes after it.
            for pending in [p for p in self._pending if p[0] in ("metadata", "marker") and p[1][0] == key]:
                del self._pending[pending]
            self._pending.pop((kind, key), None)
        self._pending[(kind, key)] = value
        self._queue_one()

    def append_history(self, line: HistoryLine) -> None:
        self._pending_lines.append(line)
        self._queue_one()

    def _queue_one(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._queued += 1
        if self._timer is None and not self._writing:
            self._timer = self._clock.callLater(self.flush_interval, self._write_batch)

    def _write_batch(self) -> None:
        """Start one transaction with everything queued, unless one is running already."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._writing or self._written >= self._queued:
            return
        changes, lines = self._pending, self._pending_lines
        self._pending, self._pending_lines = {}, []
        upto = self._queued
        self._writing = True
        careful, self._careful = self._careful, False
        d = self._pool.runInteraction(self._apply, changes, lines, careful)
        d.addCallbacks(
            self._batch_written, self._batch_failed, callbackArgs=(upto,),
            errbackArgs=(changes, lines),
        )

    def _batch_written(self, skipped: list[str], upto: int) -> None:
        self._writing = self._retrying = False
        for description in skipped:
            log.error("storage: the database refused a change, which is dropped: {what}", what=description)
        self._written = upto
        ready = [d for target, d in self._waiters if target <= upto]
        self._waiters = [(target, d) for target, d in self._waiters if target > upto]
        if self._written < self._queued:
            if self._waiters:
                self._write_batch()
            elif self._timer is None:
                self._timer = self._clock.callLater(self.flush_interval, self._write_batch)
        for d in ready:
            d.callback(None)

    def _batch_failed(self, failure: Failure, changes: dict, lines: list[HistoryLine]) -> None:
        """Keep the batch for another try: after ``retry_delay`` when the database failed, at
        once and change by change when it refused a record (``_apply``'s careful mode)."""
        self._writing = False
        self._retrying = True
        database_down = failure.check(adbapi.ConnectionLost, self._pool.dbapi.OperationalError)
        delay = self.retry_delay if database_down else 0.0
        self._careful = not database_down
        log.failure(
            "storage: writing {count} queued changes failed; retrying in {delay} s",
            failure, count=len(changes) + len(lines), delay=delay,
        )
        changes.update(self._pending)
        self._pending = changes
        self._pending_lines = lines + self._pending_lines
        self._timer = self._clock.callLater(delay, self._write_batch)

    def _caught_up(self) -> Deferred[None]:
        """Fires once every change queued before this call is written; starts a batch now."""
        if self._written >= self._queued:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append((self._queued, d))
        if not self._writing and not self._retrying:
            self._write_batch()
        return d

    def _apply(
        self, txn: Any, changes: dict[tuple[str, Any], Any], lines: list[HistoryLine],
        careful: bool = False,
    ) -> list[str]:
        """Write one batch in one transaction. ``careful`` puts each change in a savepoint of its
        own and skips (and reports) those the database refuses, so one bad record cannot block
        every later write; returns the descriptions of the skipped ones."""
        q = self._dialect.q
        if self._dialect.begin:
            txn.execute(self._dialect.begin)
        insert_line = q(
            f"INSERT INTO messages ({LINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (msgid) DO NOTHING"
        )
        writes: list[tuple[str, Any, tuple[Any, ...]]] = [
            (f"{kind} {key}", write_change, (txn, self._dialect, kind, key, value))
            for (kind, key), value in changes.items()
        ]
        if not careful:
            for _, write, args in writes:
                write(*args)
            if lines:
                txn.executemany(insert_line, [line_row(line) for line in lines])
            return []
        writes += [
            (f"line {line.msgid}", lambda row: txn.execute(insert_line, row), (line_row(line),))
            for line in lines
        ]
        skipped = []
        for what, write, args in writes:
            txn.execute("SAVEPOINT one_change")
            try:
                write(*args)
            except self._pool.dbapi.OperationalError:
                raise  # the database, not the record: retry the whole batch
            except Exception as error:
                txn.execute("ROLLBACK TO SAVEPOINT one_change")
                skipped.append(f"{what}: {error}")
            txn.execute("RELEASE SAVEPOINT one_change")
        return skipped

    def flush(self) -> Deferred[None]:
        return self._caught_up()
