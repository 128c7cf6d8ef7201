"""``--db`` URLs: which store they name, and opening it."""

from __future__ import annotations

import os
from typing import Any, NamedTuple, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from twistedchat.storage.base import Store
from twistedchat.storage.model import StoreUrlError

DEFAULT_DB_URL = "sqlite:twistedchat.sqlite3"

_USAGE = (
    "use sqlite:PATH (e.g. sqlite:twistedchat.sqlite3), memory: (nothing kept) or "
    "postgresql://USER@HOST/DATABASE"
)


class StoreUrl(NamedTuple):
    """A parsed ``--db`` URL: the kind of store and what to open (a file path or a libpq URL)."""

    kind: str
    target: str


def parse_store_url(url: str) -> StoreUrl:
    """Check a ``--db`` URL; ``StoreUrlError`` says what is wrong and what would be accepted."""
    scheme, sep, rest = url.partition(":")
    if not sep:
        raise StoreUrlError(f"--db {url!r} has no scheme; {_USAGE}")
    if scheme == "memory":
        if rest:
            raise StoreUrlError(f"--db memory: takes nothing after the colon, got {url!r}")
        return StoreUrl("memory", "")
    if scheme == "sqlite":
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise StoreUrlError(f"--db sqlite: needs a file path, e.g. {DEFAULT_DB_URL}")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreUrlError(f"--db {url!r}: the directory {directory} does not exist")
        return StoreUrl("sqlite", path)
    if scheme in ("postgresql", "postgres"):
        if not rest.startswith("//"):
            raise StoreUrlError(f"--db {url!r}: write postgresql://USER@HOST/DATABASE")
        return StoreUrl("postgresql", url)
    raise StoreUrlError(f"--db {url!r}: unknown kind of database {scheme!r}; {_USAGE}")


def open_store(url: str = DEFAULT_DB_URL, clock: IReactorTime | None = None, **options: Any) -> Deferred[Store]:
    """Open (creating and migrating as needed) the store a ``--db`` URL names.

    ``options`` go to ``SQLStore`` (``flush_interval``, ``retry_delay``, ``migrations``). Fails with
    ``StoreUrlError`` for a bad URL and ``SchemaTooNew`` for a database newer than this code.
    """
    try:
        parsed = parse_store_url(url)
    except StoreUrlError:
        return fail()
    if parsed.kind == "memory":
        from twistedchat.storage.memory import MemoryStore

        return succeed(MemoryStore())
    from twistedchat.storage import sql

    if clock is None:
        from twisted.internet import reactor

        clock = reactor
    if parsed.kind == "sqlite":
        opened = sql.SQLStore.open(sql.sqlite_pool(parsed.target), sql.SQLITE, clock, **options)
    else:
        opened = sql.SQLStore.open(sql.postgresql_pool(parsed.target), sql.POSTGRESQL, clock,
                                   **options)
    # Deferred is invariant in its result type; this one only ever gives its SQLStore out.
    return cast(Deferred[Store], opened)
