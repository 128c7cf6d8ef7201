"""Copy a whole store into an empty one: ``python -m twistedchat.storage.copy FROM_URL TO_URL``.

Moves a server from SQLite to PostgreSQL (or back, or to a new file): accounts, owned nicks,
registered channels, their metadata and read markers, then every history line in the order it was stored (so equal timestamps keep
their order), a page at a time. Stop the daemon first; the target must be empty.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorCore

from twistedchat.storage.model import StoreError
from twistedchat.storage.sql import SQLStore
from twistedchat.storage.sql_records import LINE_COLUMNS, line_from_row
from twistedchat.storage.url import open_store

PAGE = 5000


async def copy_store(source_url: str, target_url: str, page: int = PAGE) -> dict[str, int]:
    """Copy everything from ``source_url`` into the empty store at ``target_url``; returns counts."""
    source = await open_store(source_url)
    try:
        target = await open_store(target_url)
    except Exception:
        await source.close()
        raise
    try:
        if not isinstance(source, SQLStore) or not isinstance(target, SQLStore):
            raise StoreError("copy works between SQL stores (sqlite: and postgresql: URLs)")
        if target._accounts or target._channels or await _count_lines(target):
            raise StoreError(f"the target {target_url} is not empty; copy only into a new database")
        target._accounts.update(source._accounts)
        target._nicks.update(source._nicks)
        target._channels.update(source._channels)
        for kind, records in (
            ("account", source._accounts), ("nick", source._nicks), ("channel", source._channels)
        ):
            for key, value in records.items():
                target._changed(kind, key, value)
        kept = await source._pool.runInteraction(_owner_rows)
        for kind, owner, name, value in kept:
            target._changed(kind, (owner, name), value)
        await target.flush()
        lines, after = 0, 0
        while True:
            rows = await source._pool.runInteraction(_page, source._dialect.q, after, page)
            if not rows:
                break
            for row in rows:
                target.append_history(line_from_row(row[1:]))
            after = rows[-1][0]
            lines += len(rows)
            await target.flush()
        return {
            "accounts": len(source._accounts), "nicks": len(source._nicks),
            "channels": len(source._channels), "metadata and read markers": len(kept),
            "lines": lines,
        }
    finally:
        await target.close()
        await source.close()


def _page(txn: Any, q: Any, after: int, limit: int) -> list[tuple[Any, ...]]:
    txn.execute(
        q(f"SELECT seq, {LINE_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?"),
        (after, limit),
    )
    return txn.fetchall()


def _owner_rows(txn: Any) -> list[tuple[str, str, str, str]]:
    """Every kept metadata key and read marker, as (kind, owner, key or target, value)."""
    txn.execute("SELECT owner, key, value FROM owner_metadata")
    rows = [("metadata", *row) for row in txn.fetchall()]
    txn.execute("SELECT owner, target, stamp FROM read_markers")
    return rows + [("marker", *row) for row in txn.fetchall()]


async def _count_lines(store: SQLStore) -> int:
    rows = await store._pool.runQuery("SELECT COUNT(*) FROM messages")
    return int(rows[0][0])


def main(argv: list[str] | None = None) -> int:
    """The command line: usage errors and store errors are one line on stderr, exit status 2/1."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m twistedchat.storage.copy FROM_URL TO_URL", file=sys.stderr)
        return 2
    outcome: dict[str, Any] = {}

    source_url, target_url = args

    async def run(reactor: IReactorCore) -> None:
        try:
            outcome["counts"] = await copy_store(source_url, target_url)
        except StoreError as error:
            outcome["error"] = str(error)
        except Exception as error:  # a database that cannot be reached, a permission refused
            outcome["error"] = f"{type(error).__name__}: {error}"

    try:
        task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
    except SystemExit as stop:
        if stop.code not in (0, None):
            return int(stop.code)
    if "error" in outcome:
        print(f"copy: {outcome['error']}", file=sys.stderr)
        return 1
    counts = outcome["counts"]
    print("copied " + ", ".join(f"{number} {what}" for what, number in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
