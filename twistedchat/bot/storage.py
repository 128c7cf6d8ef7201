"""``self.db``: a bot's key/value store in SQLite, through ``adbapi`` (never blocking the reactor).

Every value lives under a scope: global, one nick or one channel. Nicks and channels are folded
with the server's casemapping, so ``Alice`` and ``alice`` (and ``[a]``/``{a}`` under rfc1459)
share their entries. Values are anything JSON can hold. Every method returns a Deferred.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet import defer

#: Longest key, and largest JSON-encoded value, the store accepts.
MAX_KEY_LENGTH = 200
MAX_VALUE_BYTES = 64 * 1024
#: Most entries one :meth:`Store.items` or :meth:`Store.scan` call returns.
MAX_ITEMS = 1000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bot_values ("
    " scope TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (scope, owner, key))"
)


class StoreError(ValueError):
    """A key or value the store refuses (too long, not JSON)."""


class Store:
    """Scoped JSON values in one SQLite file (``":memory:"`` for a throwaway store)."""

    def __init__(self, path: str, fold: Callable[[str], str]) -> None:
        self.path = path
        self._fold = fold
        self._pool = adbapi.ConnectionPool(
            "sqlite3", path, check_same_thread=False, cp_min=1, cp_max=1,
            cp_openfun=self._open, cp_noisy=False)

    @staticmethod
    def _open(connection: Any) -> None:
        connection.execute(_SCHEMA)
        connection.commit()

    def _scope(self, nick: str | None, channel: str | None) -> tuple[str, str]:
        if nick is not None and channel is not None:
            raise StoreError("a value belongs to a nick or a channel, not both")
        if nick is not None:
            return "nick", self._fold(nick)
        if channel is not None:
            return "channel", self._fold(channel)
        return "global", ""

    @staticmethod
    def _check_key(key: str) -> None:
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise StoreError(f"a key is a string of 1 to {MAX_KEY_LENGTH} characters")

    @staticmethod
    def _encode(value: Any) -> str:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise StoreError(f"value cannot be stored as JSON: {error}") from None
        if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
            raise StoreError(f"value is over {MAX_VALUE_BYTES} bytes as JSON")
        return text

    def get(self, key: str, default: Any = None, *, nick: str | None = None,
            channel: str | None = None) -> defer.Deferred[Any]:
        """The value under ``key`` (in the nick's, the channel's or the global scope)."""
        try:
            self._check_key(key)
            scope, owner = self._scope(nick, channel)
        except StoreError:
            return defer.fail()
        query = self._pool.runQuery(
            "SELECT value FROM bot_values WHERE scope = ? AND owner = ? AND key = ?",
            (scope, owner, key))
        return query.addCallback(lambda rows: json.loads(rows[0][0]) if rows else default)

    def set(self, key: str, value: Any, *, nick: str | None = None,
            channel: str | None = None) -> defer.Deferred[None]:
        """Store ``value`` under ``key``."""
        try:
            self._check_key(key)
            scope, owner = self._scope(nick, channel)
            text = self._encode(value)
        except StoreError:
            return defer.fail()
        return self._pool.runOperation(
            "INSERT OR REPLACE INTO bot_values (scope, owner, key, value) VALUES (?, ?, ?, ?)",
            (scope, owner, key, text))

    def delete(self, key: str, *, nick: str | None = None,
               channel: str | None = None) -> defer.Deferred[None]:
        """Forget ``key`` (no error if it was not there)."""
        try:
            self._check_key(key)
            scope, owner = self._scope(nick, channel)
        except StoreError:
            return defer.fail()
        return self._pool.runOperation(
            "DELETE FROM bot_values WHERE scope = ? AND owner = ? AND key = ?", (scope, owner, key))

    def add(self, key: str, amount: int | float = 1, *, nick: str | None = None,
            channel: str | None = None) -> defer.Deferred[int | float]:
        """Add ``amount`` to the number under ``key`` (0 if absent) in one transaction; the result."""
        try:
            self._check_key(key)
            scope, owner = self._scope(nick, channel)
        except StoreError:
            return defer.fail()

        def interaction(cursor: Any) -> int | float:
            cursor.execute("SELECT value FROM bot_values WHERE scope = ? AND owner = ? AND key = ?",
                           (scope, owner, key))
            row = cursor.fetchone()
            current = json.loads(row[0]) if row else 0
            if not isinstance(current, (int, float)) or isinstance(current, bool):
                raise StoreError(f"{key!r} does not hold a number")
            total = current + amount
            cursor.execute("INSERT OR REPLACE INTO bot_values (scope, owner, key, value) "
                           "VALUES (?, ?, ?, ?)", (scope, owner, key, json.dumps(total)))
            return total

        return self._pool.runInteraction(interaction)

    def items(self, *, nick: str | None = None, channel: str | None = None, prefix: str = "",
              limit: int = MAX_ITEMS) -> defer.Deferred[dict[str, Any]]:
        """The scope's keys (those starting with ``prefix``) and values, at most ``limit``."""
        try:
            scope, owner = self._scope(nick, channel)
        except StoreError:
            return defer.fail()
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = self._pool.runQuery(
            "SELECT key, value FROM bot_values WHERE scope = ? AND owner = ? "
            "AND key LIKE ? ESCAPE '\\' ORDER BY key LIMIT ?",
            (scope, owner, pattern, min(limit, MAX_ITEMS)))
        return query.addCallback(lambda rows: {key: json.loads(value) for key, value in rows})

    def scan(self, key: str, scope: str = "nick",
             limit: int = MAX_ITEMS) -> defer.Deferred[dict[str, Any]]:
        """``key`` across every nick (or ``scope="channel"``): folded owner -> value."""
        if scope not in ("nick", "channel"):
            return defer.fail(StoreError("scan covers scope 'nick' or 'channel'"))
        query = self._pool.runQuery(
            "SELECT owner, value FROM bot_values WHERE scope = ? AND key = ? ORDER BY owner "
            "LIMIT ?", (scope, key, min(limit, MAX_ITEMS)))
        return query.addCallback(lambda rows: {owner: json.loads(value) for owner, value in rows})

    def close(self) -> None:
        """Close the database (pending operations finish first)."""
        self._pool.close()
