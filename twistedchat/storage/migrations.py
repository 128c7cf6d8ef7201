"""Numbered schema migrations for the SQL stores, applied in order at start.

Add a migration by appending ``Migration(N + 1, ...)``; never edit one that has shipped. ``{serial}``,
``{blob}`` and ``{begin}`` are filled in per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from twistedchat.storage.model import SchemaTooNew


class Migration(NamedTuple):
    """One schema step: its number, what it does, its statements."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "accounts, nick ownership, registered channels, message history",
        (
            """CREATE TABLE accounts (
                key TEXT PRIMARY KEY, name TEXT NOT NULL, password_hash TEXT NOT NULL,
                scram_salt {blob} NOT NULL, scram_stored_key {blob} NOT NULL,
                scram_server_key {blob} NOT NULL, scram_iterations INTEGER NOT NULL,
                created_ms BIGINT NOT NULL, email TEXT)""",
            """CREATE TABLE nicks (
                key TEXT PRIMARY KEY, nick TEXT NOT NULL, account TEXT NOT NULL,
                since_ms BIGINT NOT NULL)""",
            "CREATE INDEX nicks_account ON nicks (account)",
            """CREATE TABLE channels (
                key TEXT PRIMARY KEY, name TEXT NOT NULL, founder TEXT NOT NULL,
                registered_ms BIGINT NOT NULL, topic TEXT NOT NULL, topic_setter TEXT NOT NULL,
                topic_ms BIGINT NOT NULL, modes TEXT NOT NULL, channel_key TEXT,
                user_limit INTEGER)""",
            """CREATE TABLE channel_access (
                channel TEXT NOT NULL, account TEXT NOT NULL, level TEXT NOT NULL,
                PRIMARY KEY (channel, account))""",
            """CREATE TABLE channel_bans (
                channel TEXT NOT NULL, mask TEXT NOT NULL, set_by TEXT NOT NULL,
                set_ms BIGINT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (channel, mask))""",
            """CREATE TABLE messages (
                seq {serial}, msgid TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL,
                at_ms BIGINT NOT NULL, target TEXT NOT NULL, sender TEXT NOT NULL, account TEXT,
                command TEXT NOT NULL, body TEXT NOT NULL, party_a TEXT, party_b TEXT,
                client_tags TEXT)""",
            "CREATE INDEX messages_position ON messages (conversation, at_ms, seq)",
            "CREATE INDEX messages_time ON messages (at_ms)",
            "CREATE INDEX messages_party_a ON messages (party_a, at_ms) WHERE party_a IS NOT NULL",
            "CREATE INDEX messages_party_b ON messages (party_b, at_ms) WHERE party_b IS NOT NULL",
        ),
    ),
    Migration(
        2,
        "metadata and read markers of accounts and registered channels",
        (
            """CREATE TABLE owner_metadata (
                owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (owner, key))""",
            """CREATE TABLE read_markers (
                owner TEXT NOT NULL, target TEXT NOT NULL, stamp TEXT NOT NULL,
                PRIMARY KEY (owner, target))""",
        ),
    ),
    Migration(
        3,
        "registered channels' settings: description, keep topic, mode lock, restricted",
        (
            "ALTER TABLE channels ADD COLUMN description TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE channels ADD COLUMN keep_topic INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE channels ADD COLUMN mlock_on TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE channels ADD COLUMN mlock_off TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE channels ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0",
        ),
    ),
)


def schema_version(txn: Any) -> int:
    """The highest migration applied to the database (0 for a new one)."""
    txn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL)"
    )
    txn.execute("SELECT MAX(version) FROM schema_migrations")
    row = txn.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check_not_newer(current: int, latest: int) -> None:
    """``SchemaTooNew`` when the database's schema ``current`` is past this code's ``latest``."""
    if current > latest:
        raise SchemaTooNew(
            f"the database has schema version {current} but this twistedchat knows only up to "
            f"{latest}: run the newer twistedchat that wrote it, or restore a backup"
        )


def apply_migrations(
    txn: Any, types: dict[str, str], migrations: Sequence[Migration] = MIGRATIONS
) -> tuple[int, int]:
    """Bring the schema up to the last migration, in one transaction; returns (before, after).

    Raises ``SchemaTooNew`` when the database knows a migration this code does not.
    """
    if types.get("begin"):
        txn.execute(types["begin"])
    current = schema_version(txn)
    latest = migrations[-1].version if migrations else 0
    check_not_newer(current, latest)
    for migration in migrations:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            txn.execute(statement.format(**types))
        txn.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ({p}, {p})".format(
                p=types["param"]
            ),
            (migration.version, migration.description),
        )
    return current, max(current, latest)
