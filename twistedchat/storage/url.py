"""``--db`` URLs: which store they name, and opening it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from twistedchat.storage.base import Store
from twistedchat.storage.migrations import (
    MIGRATIONS,
    Migration,
    apply_migrations,
    check_not_newer,
)
from twistedchat.storage.model import StoreError, StoreUrlError

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
        if path.endswith(os.sep) or os.path.basename(path) in (".", ".."):
            raise StoreUrlError(f"--db {url!r}: name a file, not a directory")
        return StoreUrl("sqlite", path)
    if scheme in ("postgresql", "postgres"):
        if not rest.startswith("//"):
            raise StoreUrlError(f"--db {url!r}: write postgresql://USER@HOST/DATABASE")
        try:
            from psycopg.conninfo import conninfo_to_dict

            settings = conninfo_to_dict(url)  # libpq's own parser: no connection made
        except ImportError:
            settings = {}  # psycopg is checked when the store opens
        except Exception as error:
            raise StoreUrlError(f"--db {redacted(url)!r}: {_first_line(error)}") from None
        for port in str(settings.get("port") or "5432").split(","):
            if not (port.isdigit() and 0 < int(port) < 65536):
                raise StoreUrlError(f"--db {redacted(url)!r}: the port {port!r} is not a number "
                                    "from 1 to 65535")
        return StoreUrl("postgresql", url)
    raise StoreUrlError(f"--db {url!r}: unknown kind of database {scheme!r}; {_USAGE}")


def redacted(url: str) -> str:
    """A ``--db`` URL fit for a log line: a PostgreSQL password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, place = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{place}"


def _first_line(error: BaseException) -> str:
    """A driver's message on one line (libpq adds hints on further lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _sqlite_path(target: str) -> str:
    """The absolute path of a ``sqlite:`` store, whose directory must exist (``StoreUrlError``)."""
    path = os.path.abspath(target)
    if not os.path.isdir(os.path.dirname(path)):
        raise StoreUrlError(f"the directory {os.path.dirname(path)} does not exist")
    return path


def _with_connection(parsed: StoreUrl, work: Callable[[Any], Any], read_only: bool = False,
                     connect_timeout: int = 10) -> Any:
    """``work(connection)`` on a plain (blocking) connection to an SQL store, closed after;
    a driver's error comes out as ``StoreError`` with its first line."""
    if parsed.kind == "sqlite":
        import sqlite3
        from urllib.parse import quote

        path = _sqlite_path(parsed.target)
        driver_error: type[Exception] = sqlite3.Error
        target = f"file:{quote(path)}?mode=ro" if read_only else path
        connect: Any = lambda: sqlite3.connect(target, uri=read_only,  # noqa: E731
                                               timeout=connect_timeout)
    else:
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL needs the psycopg package (pip install psycopg)") from None
        driver_error = psycopg.Error
        connect = lambda: psycopg.connect(parsed.target, connect_timeout=connect_timeout)  # noqa: E731
    try:
        connection = connect()
        try:
            return work(connection)
        finally:
            connection.close()
    except driver_error as error:
        raise StoreError(_first_line(error)) from None


def prepare_store(url: str, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Before the reactor runs (``twistd chat`` at start): connect to the database a ``--db`` URL
    names and apply its migrations, synchronously, so a database that cannot be used stops the
    start with a clear reason (``StoreError``, one line) and exit status 1; the store the server
    then opens finds the schema ready. Nothing to do for ``memory:``."""
    parsed = parse_store_url(url)
    if parsed.kind == "memory":
        return
    from twistedchat.storage import sql

    def migrate(connection: Any) -> None:
        if parsed.kind == "sqlite":
            sql.sqlite_setup(connection)
        types = (sql.SQLITE if parsed.kind == "sqlite" else sql.POSTGRESQL).types
        apply_migrations(connection.cursor(), types, migrations)
        connection.commit()

    _with_connection(parsed, migrate)


def inspect_store(url: str, migrations: Sequence[Migration] = MIGRATIONS) -> str:
    """For ``--configtest``: whether the database a ``--db`` URL names can be used, found without
    changing it (read-only); a line saying what was found, or ``StoreError`` saying why not."""
    parsed = parse_store_url(url)
    if parsed.kind == "memory":
        return "memory: (nothing kept)"
    if parsed.kind == "sqlite" and not os.path.exists(_sqlite_path(parsed.target)):
        return f"sqlite:{_sqlite_path(parsed.target)} (new: created at the first start)"
    listed = ("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = "
              if parsed.kind == "sqlite" else
              "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = ")

    def version_of(connection: Any) -> int:
        cursor = connection.cursor()
        cursor.execute(listed + "'schema_migrations'")
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT MAX(version) FROM schema_migrations")
        return int(cursor.fetchone()[0] or 0)

    version = _with_connection(parsed, version_of, read_only=True)
    latest = migrations[-1].version if migrations else 0
    check_not_newer(version, latest)
    pending = f"; migrations up to {latest} applied at the next start" if version < latest else ""
    return f"{redacted(url)} (schema version {version}{pending})"


def open_store(url: str = DEFAULT_DB_URL, clock: IReactorTime | None = None, **options: Any) -> Deferred[Store]:
    """Open (creating and migrating as needed) the store a ``--db`` URL names.

    ``options`` go to ``SQLStore`` (``flush_interval``, ``retry_delay``, ``migrations``). Fails with
    ``StoreUrlError`` for a bad URL and ``SchemaTooNew`` for a database newer than this code.
    """
    try:
        parsed = parse_store_url(url)
        if parsed.kind == "sqlite":
            _sqlite_path(parsed.target)
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
