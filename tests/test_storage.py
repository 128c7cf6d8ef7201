"""The storage layer, run alike against the memory store, SQLite and a real PostgreSQL."""

from __future__ import annotations

import functools
import os
import sqlite3

import pytest
import pytest_twisted
from pg_cluster import PostgresCluster, empty_database, find_bindir
from twisted.internet import defer, reactor, task

from twistedchat.storage import (
    Ban,
    HistoryLine,
    HistoryQuery,
    Selector,
    channel_conversation,
    direct_conversation,
    direct_parties,
    open_store,
    parse_store_url,
)
from twistedchat.storage.history import MAX_QUERY_LIMIT
from twistedchat.storage.migrations import MIGRATIONS, Migration
from twistedchat.storage.model import (
    MAX_BANS,
    MAX_DESCRIPTION_BYTES,
    MAX_NICKS_PER_ACCOUNT,
    AccountExists,
    ChannelAlreadyRegistered,
    ListFull,
    NickOwned,
    NoSuchAccount,
    SchemaTooNew,
    StoreError,
    StoreUrlError,
    UnknownMessageId,
)
from twistedchat.storage.url import prepare_store

NOW = 1_700_000_000.0
CHAN = channel_conversation("#Lobby")


def settles(test):
    """An async test that ends on a reactor turn of its own.

    SQL results and password hashes arrive through ``callFromThread``; a test ending inside that
    loop lets pytest-qt's processEvents re-enter the reactor and deliver the same result twice.
    """

    @functools.wraps(test)
    async def run(*args, **kwargs):
        await test(*args, **kwargs)
        await task.deferLater(reactor, 0, lambda: None)

    return pytest_twisted.ensureDeferred(run)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL cluster for this test session (None with TWISTEDCHAT_TEST_POSTGRES)."""
    if os.environ.get("TWISTEDCHAT_TEST_POSTGRES"):
        yield None
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make system-deps installs it)")
    cluster = PostgresCluster(bindir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster):
    """A PostgreSQL URL: TWISTEDCHAT_TEST_POSTGRES, or the throwaway cluster's."""
    return os.environ.get("TWISTEDCHAT_TEST_POSTGRES") or postgres_cluster.url


def _url(kind: str, request, tmp_path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'chat.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    empty_database(url)
    return url


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    return _url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def persistent_url(request, tmp_path) -> str:
    return _url(request.param, request, tmp_path)


class Opener:
    """Opens stores on one URL and closes whatever a test left open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.open_stores: list = []

    async def open(self, **options):
        store = await open_store(self.url, **options)
        self.open_stores.append(store)
        return store

    async def close(self, store) -> None:
        self.open_stores.remove(store)
        await store.close()

    async def close_all(self) -> None:
        for store in list(self.open_stores):
            await self.close(store)


@pytest_twisted.async_yield_fixture
async def stores(store_url):
    opener = Opener(store_url)
    yield opener
    await opener.close_all()


@pytest_twisted.async_yield_fixture
async def persistent(persistent_url):
    opener = Opener(persistent_url)
    yield opener
    await opener.close_all()


def line(n: int, at: float = NOW, conversation: str = CHAN, **fields) -> HistoryLine:
    values = dict(
        msgid=f"m{n}", time=at, conversation=conversation, target="#Lobby",
        sender=f"nick{n}!u@h", command="PRIVMSG", text=f"text {n}",
    )
    values.update(fields)
    return HistoryLine(**values)


def ids(lines) -> list[str]:
    return [each.msgid for each in lines]


def q(subcommand: str, start: str | None, limit: int, end: str | None = None) -> HistoryQuery:
    parse = Selector.parse
    return HistoryQuery(
        subcommand, None if start is None else parse(start), limit,
        None if end is None else parse(end),
    )


def stamp(seconds: float) -> str:
    """A ``timestamp=`` selector in the server-time format."""
    from twistedchat.server.relay import server_time

    return "timestamp=" + server_time(seconds)


# -- accounts and nicks ---------------------------------------------------------------------------

@settles
async def test_accounts_create_verify_change_drop(stores):
    store = await stores.open()
    account = await store.create_account("Alice", "correct horse", NOW)
    assert store.account("alice") == account and account.key == "alice"
    assert store.nick_owner("ALICE") == "alice"
    assert (await store.verify_password("aLiCe", "correct horse")) == account
    assert await store.verify_password("alice", "wrong horse!") is None
    assert await store.verify_password("nobody", "correct horse") is None
    with pytest.raises(AccountExists):
        await store.create_account("ALICE", "another password", NOW)
    await store.set_password("alice", "battery staple")
    assert await store.verify_password("alice", "correct horse") is None
    assert await store.verify_password("alice", "battery staple") is not None
    assert store.scram_credentials("alice").iterations >= 4096
    store.claim_nick("alice", "alice_away", NOW)
    assert store.nick_owner("Alice_Away") == "alice"
    assert store.drop_account("alice") == []
    assert store.account("alice") is None and store.nick_owner("alice_away") is None
    with pytest.raises(NoSuchAccount):
        await store.set_password("alice", "battery staple")


@settles
async def test_account_refusals(stores):
    store = await stores.open()
    with pytest.raises(StoreError, match="valid account name"):
        await store.create_account("#bad", "long enough", NOW)
    with pytest.raises(StoreError, match="at least"):
        await store.create_account("bob", "short", NOW)
    with pytest.raises(StoreError, match="at most"):
        await store.create_account("bob", "x" * 301, NOW)
    # Two registrations of one name racing while the first password hashes: the second is refused.
    first = store.create_account("bob", "long enough", NOW)
    with pytest.raises(AccountExists):
        await store.create_account("BOB", "long enough", NOW)
    await first
    await store.create_account("carol", "long enough", NOW)
    with pytest.raises(NickOwned):
        store.claim_nick("carol", "Bob", NOW)
    for n in range(MAX_NICKS_PER_ACCOUNT - 1):
        store.claim_nick("carol", f"carol{n}", NOW)
    with pytest.raises(ListFull):
        store.claim_nick("carol", "carol_extra", NOW)
    with pytest.raises(StoreError, match="keeps its own name"):
        store.release_nick("carol", "carol")
    store.release_nick("carol", "carol0")
    assert store.nick_owner("carol0") is None


# -- registered channels -----------------------------------------------------------------------------

@settles
async def test_registered_channels(stores):
    store = await stores.open()
    await store.create_account("alice", "long enough", NOW)
    await store.create_account("bob", "long enough", NOW)
    channel = store.register_channel("#Lobby", "alice", NOW, topic="hi", modes="nst")
    assert channel.founder == "alice" and channel.topic == "hi"
    with pytest.raises(ChannelAlreadyRegistered):
        store.register_channel("#LOBBY", "bob", NOW)
    store.update_channel("#lobby", key="sesame", limit=10, bans=[Ban("*!*@bad", "alice", NOW)])
    store.set_access("#lobby", "Bob", "v")
    assert store.registered_channel("#LOBBY").access == {"bob": "v"}
    with pytest.raises(StoreError):
        store.set_access("#lobby", "bob", "q")
    with pytest.raises(ListFull):
        store.update_channel("#lobby", bans=[Ban(f"*!*@h{n}", "a", NOW) for n in range(MAX_BANS + 1)])
    with pytest.raises(TypeError):
        store.update_channel("#lobby", members=[])
    # The founder's settings are bounded and checked; a refused change changes nothing.
    before = store.registered_channel("#lobby")
    for bad in ({"description": "é" * (MAX_DESCRIPTION_BYTES // 2 + 1)}, {"mlock_on": "nn"},
                {"mlock_on": "n", "mlock_off": "n"}, {"mlock_off": "+s"}, {"mlock_on": "ñ"}):
        with pytest.raises(StoreError):
            store.update_channel("#lobby", **bad)
    assert store.registered_channel("#lobby") == before
    store.update_channel("#lobby", description="x" * MAX_DESCRIPTION_BYTES, mlock_on="mn")
    # Dropping bob takes him off the list; dropping alice drops the channel she founded.
    store.drop_account("bob")
    assert store.registered_channel("#lobby").access == {}
    assert store.drop_account("alice") == ["#Lobby"]
    assert store.registered_channels() == []


# -- persistence ------------------------------------------------------------------------------------

@settles
async def test_everything_survives_a_restart(persistent):
    store = await persistent.open()
    await store.create_account("Alice", "correct horse", NOW, email="a@example.org")
    await store.create_account("bob", "long enough", NOW)
    store.claim_nick("alice", "Alice|away", NOW + 1)
    store.register_channel("#Lobby", "alice", NOW, modes="mnt")
    store.update_channel(
        "#lobby", topic="welcome", topic_setter="Alice", topic_time=NOW + 2, key="k", limit=5,
        bans=[Ban("*!*@b", "Alice", NOW + 3), Ban("*!*@a", "Alice", NOW + 4)],
    )
    store.set_access("#lobby", "bob", "o")
    store.update_channel("#lobby", description="the lobby: ünïcode", keep_topic=False,
                         mlock_on="nt", mlock_off="s", restricted=True)
    for n in range(5):
        store.append_history(line(n, NOW + n))
    tags = {"+draft/reply": "m1", "+example.org/odd": "a;b c\\d", "+flag": ""}
    store.append_history(line(5, NOW + 5, client_tags=tags))
    dm = direct_conversation("alice", "bob")
    store.append_history(line(9, NOW, dm, target="bob", parties=direct_parties("alice", "bob")))
    before = store.account("alice"), store.registered_channel("#lobby")
    await persistent.close(store)

    again = await persistent.open()
    assert (again.account("alice"), again.registered_channel("#lobby")) == before
    assert again.nick_owner("alice|AWAY") == "alice" and again.nick_owner("bob") == "bob"
    assert [b.mask for b in again.registered_channel("#lobby").bans] == ["*!*@b", "*!*@a"]
    settings = again.registered_channel("#lobby")
    assert (settings.description, settings.keep_topic, settings.mlock_on, settings.mlock_off,
            settings.restricted) == ("the lobby: ünïcode", False, "nt", "s", True)
    assert (await again.verify_password("alice", "correct horse")).email == "a@example.org"
    kept = await again.history(CHAN, q("LATEST", None, 10))
    assert ids(kept) == [f"m{n}" for n in range(6)]
    assert kept[5].client_tags == tags and kept[0].client_tags is None
    [private] = await again.history(dm, q("LATEST", None, 10))
    assert private.parties == ("alice", "bob") and private.time == NOW
    # Changes after the restart (a drop included) are kept too.
    again.drop_channel("#lobby")
    again.release_nick("alice", "alice|away")
    await persistent.close(again)
    third = await persistent.open()
    assert third.registered_channel("#lobby") is None and third.nick_owner("alice|away") is None


@settles
async def test_sqlite_runs_in_wal_mode(tmp_path):
    path = tmp_path / "wal.sqlite3"
    store = await open_store(f"sqlite:{path}")
    store.append_history(line(1))
    await store.flush()
    assert (tmp_path / "wal.sqlite3-wal").exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT msgid FROM messages").fetchall() == [("m1",)]
    await store.close()


# -- migrations ----------------------------------------------------------------------------------------

PROBE = Migration(len(MIGRATIONS) + 1, "test probe", ("CREATE TABLE migration_probe (x INTEGER)",))


@settles
async def test_migrations_apply_in_order_and_once(persistent):
    store = await persistent.open()
    store.append_history(line(1))
    await persistent.close(store)
    # A later migration is applied to the existing database, keeping its data.
    upgraded = await persistent.open(migrations=(*MIGRATIONS, PROBE))
    assert ids(await upgraded.history(CHAN, q("LATEST", None, 5))) == ["m1"]
    versions = await upgraded._pool.runQuery("SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in versions] == list(range(1, PROBE.version + 1))
    await upgraded._pool.runQuery("SELECT COUNT(*) FROM migration_probe")
    await persistent.close(upgraded)
    # Opening again applies nothing twice (a second CREATE TABLE would fail).
    await persistent.close(await persistent.open(migrations=(*MIGRATIONS, PROBE)))


def _execute(url: str, statement: str, params: tuple) -> None:
    """One statement on the database of ``url``, outside any store (``?`` placeholders)."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:")) as connection:
            connection.execute(statement, params)
        connection.close()
    else:
        import psycopg

        with psycopg.connect(url) as connection:
            connection.execute(statement.replace("?", "%s"), params)


@settles
async def test_channels_registered_before_the_settings_get_their_defaults(persistent):
    """Migration 3 adds the founder's settings to channels registered under schema 2."""
    prepare_store(persistent.url, MIGRATIONS[:2])
    _execute(persistent.url, "INSERT INTO channels (key, name, founder, registered_ms, topic, "
             "topic_setter, topic_ms, modes, channel_key, user_limit) VALUES "
             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             ("#old", "#Old", "alice", 1000, "kept", "alice", 2000, "nt", None, None))
    store = await persistent.open()
    old = store.registered_channel("#old")
    assert (old.topic, old.modes, old.description, old.keep_topic, old.mlock_on, old.mlock_off,
            old.restricted) == ("kept", "nt", "", True, "", "", False)


@settles
async def test_a_newer_database_is_refused_clearly(persistent):
    await persistent.close(await persistent.open(migrations=(*MIGRATIONS, PROBE)))
    with pytest.raises(SchemaTooNew) as refused:
        await open_store(persistent.url)
    message = str(refused.value)
    assert f"version {PROBE.version}" in message and f"up to {MIGRATIONS[-1].version}" in message


# -- write-behind ------------------------------------------------------------------------------------------

@settles
async def test_reads_see_every_write_queued_before_them(stores):
    store = await stores.open()
    seen = []
    for batch in range(20):
        for n in range(batch * 10, batch * 10 + 10):
            store.append_history(line(n, NOW + n / 1000))
        seen.append(store.history(CHAN, q("LATEST", None, 1000)))
    results = await defer.gatherResults(seen)
    for batch, lines in enumerate(results):
        got = ids(lines)
        # Everything queued before the read, in order; maybe more, never a gap.
        assert got[: (batch + 1) * 10] == [f"m{n}" for n in range((batch + 1) * 10)]
        assert got == [f"m{n}" for n in range(len(got))]


@settles
async def test_writes_are_batched_not_written_in_the_callers_turn(persistent):
    store = await persistent.open(flush_interval=0.05)
    transactions = []
    real = store._pool.runInteraction

    def counted(work, *args, **kw):
        if work == store._apply:
            transactions.append(len(args[1]))
        return real(work, *args, **kw)

    store._pool.runInteraction = counted
    for n in range(100):
        store.append_history(line(n))
    assert store._written == 0 and store._queued == 100  # nothing written synchronously
    await store.flush()
    assert store._written == 100 and transactions == [100]  # one transaction for all
    count = await store._pool.runQuery("SELECT COUNT(*) FROM messages")
    assert count[0][0] == 100


@settles
async def test_a_failed_batch_is_kept_and_retried(tmp_path):
    store = await open_store(f"sqlite:{tmp_path / 'r.sqlite3'}", retry_delay=0.01)
    real = store._pool.runInteraction
    failures = []

    def flaky(work, *args, **kw):
        if work == store._apply and not failures:
            failures.append(1)
            return defer.fail(sqlite3.OperationalError("disk I/O error"))
        return real(work, *args, **kw)

    store._pool.runInteraction = flaky
    store.append_history(line(1))
    await store.flush()
    store.append_history(line(2))
    assert ids(await store.history(CHAN, q("LATEST", None, 5))) == ["m1", "m2"]
    assert failures == [1]
    await store.close()


@settles
async def test_closed_store_refuses_writes(persistent):
    store = await persistent.open()
    await persistent.close(store)
    with pytest.raises(RuntimeError):
        store.append_history(line(1))


# -- CHATHISTORY semantics ---------------------------------------------------------------------------------

async def _ten_lines(store):
    """m0..m9, one second apart, except m4, m5, m6 share one millisecond (stored in that order)."""
    times = [NOW + n for n in range(10)]
    times[5] = times[6] = times[4]
    for n, at in enumerate(times):
        store.append_history(line(n, at))
    store.append_history(line(99, NOW + 5, channel_conversation("#other"), target="#other"))
    return times


def m(*numbers: int) -> list[str]:
    return [f"m{n}" for n in numbers]


@settles
async def test_latest(stores):
    store = await stores.open()
    times = await _ten_lines(store)
    assert ids(await store.history(CHAN, q("LATEST", None, 3))) == m(7, 8, 9)
    assert ids(await store.history(CHAN, q("LATEST", None, 50))) == m(*range(10))
    assert ids(await store.history(CHAN, q("LATEST", "msgid=m5", 50))) == m(6, 7, 8, 9)
    assert ids(await store.history(CHAN, q("LATEST", "msgid=m5", 2))) == m(8, 9)
    # A timestamp excludes its whole millisecond: after m4's time means from m7 on.
    assert ids(await store.history(CHAN, q("LATEST", stamp(times[4]), 50))) == m(7, 8, 9)
    assert await store.history(channel_conversation("#empty"), q("LATEST", None, 5)) == []


@settles
async def test_before_and_after(stores):
    store = await stores.open()
    times = await _ten_lines(store)
    assert ids(await store.history(CHAN, q("BEFORE", "msgid=m6", 3))) == m(3, 4, 5)
    assert ids(await store.history(CHAN, q("BEFORE", "msgid=m5", 10))) == m(0, 1, 2, 3, 4)
    assert ids(await store.history(CHAN, q("BEFORE", stamp(times[4]), 10))) == m(0, 1, 2, 3)
    assert ids(await store.history(CHAN, q("BEFORE", "msgid=m0", 10))) == []
    assert ids(await store.history(CHAN, q("AFTER", "msgid=m4", 2))) == m(5, 6)
    assert ids(await store.history(CHAN, q("AFTER", stamp(times[3]), 2))) == m(4, 5)
    assert ids(await store.history(CHAN, q("AFTER", "msgid=m9", 5))) == []
    assert ids(await store.history(CHAN, q("AFTER", stamp(NOW - 100), 1))) == m(0)


@settles
async def test_around(stores):
    store = await stores.open()
    times = await _ten_lines(store)
    assert ids(await store.history(CHAN, q("AROUND", "msgid=m5", 4))) == m(3, 4, 5, 6)
    assert ids(await store.history(CHAN, q("AROUND", "msgid=m5", 3))) == m(4, 5, 6)
    assert ids(await store.history(CHAN, q("AROUND", "msgid=m5", 1))) == m(5)
    # Short on one side: the other side fills the limit.
    assert ids(await store.history(CHAN, q("AROUND", "msgid=m1", 6))) == m(0, 1, 2, 3, 4, 5)
    assert ids(await store.history(CHAN, q("AROUND", "msgid=m9", 4))) == m(6, 7, 8, 9)
    assert ids(await store.history(CHAN, q("AROUND", stamp(times[7]), 2))) == m(6, 7)


@settles
async def test_between(stores):
    store = await stores.open()
    times = await _ten_lines(store)
    assert ids(await store.history(CHAN, q("BETWEEN", "msgid=m2", 10, "msgid=m7"))) == m(3, 4, 5, 6)
    assert ids(await store.history(CHAN, q("BETWEEN", "msgid=m2", 2, "msgid=m7"))) == m(3, 4)
    # Backwards: counted from the first selector, still returned oldest first.
    assert ids(await store.history(CHAN, q("BETWEEN", "msgid=m7", 2, "msgid=m2"))) == m(5, 6)
    assert ids(await store.history(CHAN, q("BETWEEN", stamp(times[1]), 10, stamp(times[4])))) == m(2, 3)
    assert ids(await store.history(CHAN, q("BETWEEN", "msgid=m4", 10, "msgid=m6"))) == m(5)
    assert ids(await store.history(CHAN, q("BETWEEN", "msgid=m4", 10, "msgid=m4"))) == []


@settles
async def test_selector_edge_cases(stores):
    store = await stores.open()
    await _ten_lines(store)
    with pytest.raises(UnknownMessageId):
        await store.history(CHAN, q("BEFORE", "msgid=nope", 5))
    # A msgid of another conversation is as unknown as a missing one (nothing leaks across).
    with pytest.raises(UnknownMessageId):
        await store.history(CHAN, q("AFTER", "msgid=m99", 5))
    with pytest.raises(UnknownMessageId):
        await store.history(CHAN, q("BETWEEN", "msgid=m1", 5, "msgid=nope"))
    # The limit is capped whatever the caller asks.
    for n in range(10, MAX_QUERY_LIMIT + 20):
        store.append_history(line(n, NOW + n))
    assert len(await store.history(CHAN, q("LATEST", None, 10**9))) == MAX_QUERY_LIMIT
    # A line stamped earlier than the last one (a clock step back) sorts by its time.
    store.append_history(line(-1, NOW - 1))
    assert ids(await store.history(CHAN, q("BEFORE", "msgid=m0", 5))) == ["m-1"]


def test_queries_and_selectors_refuse_bad_input():
    for bad in ("timestamp=yesterday", "msgid=", "time=2020-01-01T00:00:00.000Z", "m1",
                "timestamp=2020-01-01T00:00:00.000"):
        with pytest.raises(ValueError):
            Selector.parse(bad)
    assert Selector.parse("timestamp=2023-11-14T22:13:20.000Z").time == NOW
    with pytest.raises(ValueError):
        HistoryQuery("LATEST", None, 0)
    with pytest.raises(ValueError):
        HistoryQuery("BEFORE", None, 5)
    with pytest.raises(ValueError):
        HistoryQuery("AFTER", Selector(msgid="a"), 5, Selector(msgid="b"))
    with pytest.raises(ValueError):
        HistoryQuery("SIDEWAYS", Selector(msgid="a"), 5)


@settles
async def test_targets(stores):
    store = await stores.open()
    alice_bob = direct_conversation("alice", "bob")
    carol_bob = direct_conversation("carol", "bob")
    store.append_history(line(1, NOW + 1))
    store.append_history(line(2, NOW + 2, channel_conversation("#two"), target="#Two"))
    store.append_history(line(3, NOW + 3, alice_bob, target="bob", parties=direct_parties("alice", "bob")))
    store.append_history(line(4, NOW + 4, CHAN))
    store.append_history(line(5, NOW + 5, carol_bob, target="bob", parties=direct_parties("carol", "bob")))
    channels = {CHAN, channel_conversation("#two")}
    found = await store.history_targets({"#LOBBY", "#Two"}, "ALICE", NOW, NOW + 10, 10)
    assert [(t.conversation, t.latest) for t in found] == [
        ("#two", NOW + 2), (alice_bob, NOW + 3), (CHAN, NOW + 4),
    ]
    assert found[0].target == "#Two" and found[1].parties == ("alice", "bob")
    backwards = await store.history_targets(channels, "alice", NOW + 10, NOW, 2)
    assert [t.conversation for t in backwards] == [CHAN, alice_bob]
    # The interval is exclusive, and bounds the latest line counted.
    inside = await store.history_targets(channels, None, NOW + 1, NOW + 4, 10)
    assert [(t.conversation, t.latest) for t in inside] == [("#two", NOW + 2)]
    assert await store.history_targets(set(), None, NOW, NOW + 10, 10) == []


@settles
async def test_retention(stores):
    store = await stores.open()
    day = 86400
    for n in range(6):
        store.append_history(line(n, NOW - (5 - n) * day))
    store.append_history(line(10, NOW, channel_conversation("#b"), target="#b"))
    assert await store.prune_history(NOW, days=2.5, lines_per_conversation=None) == 3
    assert ids(await store.history(CHAN, q("LATEST", None, 10))) == m(3, 4, 5)
    assert await store.prune_history(NOW, days=None, lines_per_conversation=1) == 2
    assert ids(await store.history(CHAN, q("LATEST", None, 10))) == m(5)
    assert ids(await store.history("#b", q("LATEST", None, 10))) == m(10)
    # A pruned msgid is no longer a selector.
    with pytest.raises(UnknownMessageId):
        await store.history(CHAN, q("AFTER", "msgid=m3", 5))


# -- URLs ------------------------------------------------------------------------------------------------

def test_store_urls(tmp_path):
    assert parse_store_url("memory:") == ("memory", "")
    assert parse_store_url(f"sqlite:{tmp_path}/x.db") == ("sqlite", f"{tmp_path}/x.db")
    assert parse_store_url("sqlite:twistedchat.sqlite3").kind == "sqlite"
    assert parse_store_url("postgresql://chat@db/chat").kind == "postgresql"
    for bad, why in [
        ("twistedchat.sqlite3", "no scheme"),
        ("mysql://x", "unknown kind"),
        ("sqlite:", "needs a file path"),
        (f"sqlite:{tmp_path}/", "not a directory"),
        ("postgresql://chat@db:port/chat", "port"),
        ("memory:yes", "nothing after"),
        ("postgresql:chat", "postgresql://"),
    ]:
        with pytest.raises(StoreUrlError, match=why):
            parse_store_url(bad)


@settles
async def test_open_store_fails_cleanly_on_a_bad_url(tmp_path):
    with pytest.raises(StoreUrlError):
        await open_store("redis://localhost")
    with pytest.raises(StoreUrlError, match="does not exist"):
        await open_store(f"sqlite:{tmp_path}/missing/x.db")


# -- the recent lines kept for LATEST * ---------------------------------------------------------------

def test_recent_lines_cover_only_what_they_know():
    from twistedchat.storage.history import RecentLines

    recent = RecentLines(depth=3, conversations=2)
    assert recent.latest(CHAN, 1) is None
    recent.loading(CHAN)
    recent.loaded(CHAN, [line(1), line(2)], asked=3)  # fewer than asked: the whole conversation
    assert ids(recent.latest(CHAN, 10)) == m(1, 2)
    recent.append(line(3, NOW + 1))
    recent.append(line(4, NOW + 2))  # past the depth: no longer the whole conversation
    assert ids(recent.latest(CHAN, 3)) == m(2, 3, 4) and recent.latest(CHAN, 4) is None
    recent.append(line(5, NOW))  # stamped earlier than the last: the entry is dropped
    assert recent.latest(CHAN, 1) is None
    # A load that an append overtook is not kept (it would miss that line).
    recent.loading("#b")
    recent.append(line(6, conversation="#b"))
    recent.loaded("#b", [], asked=3)
    assert recent.latest("#b", 1) is None
    # Least recently used conversations go first.
    for name in ("#c", "#d", "#e"):
        recent.loading(name)
        recent.loaded(name, [line(7, conversation=name)], asked=3)
    assert recent.latest("#c", 1) is None and recent.latest("#e", 1) is not None
    recent.clear()
    assert recent.latest("#e", 1) is None


@settles
async def test_latest_from_recent_lines_matches_the_database(persistent):
    """Random appends (equal and backward stamps), LATEST * reads, LATEST/BEFORE/AFTER reads near the
    newest lines and restarts, against a reference."""
    import random

    from twistedchat.storage.history import MemoryHistory, run_query

    rng = random.Random(10)
    reference = MemoryHistory()
    store = await persistent.open(recent_lines=5)
    at, n = NOW, 0
    for step in range(300):
        roll = rng.random()
        if roll < 0.55:
            at += rng.choice([0, 0, 0.001, 1, -2])
            conversation = rng.choice([CHAN, "#b"])
            store.append_history(line(n, at, conversation))
            reference.append(line(n, at, conversation))
            n += 1
        elif roll < 0.75:
            conversation, limit = rng.choice([CHAN, "#b"]), rng.randint(1, 8)
            expected = ids(run_query(reference, conversation, q("LATEST", None, limit)))
            assert ids(await store.history(conversation, q("LATEST", None, limit))) == expected, step
        elif roll < 0.97:  # a bound near the newest lines: often answered from the window
            conversation, limit = rng.choice([CHAN, "#b"]), rng.randint(1, 8)
            known = run_query(reference, conversation, q("LATEST", None, 12))
            if not known:
                continue
            pick = rng.choice(known)
            selector = f"msgid={pick.msgid}" if rng.random() < 0.5 else stamp(pick.time)
            query = q(rng.choice(["LATEST", "BEFORE", "AFTER"]), selector, limit)
            expected = ids(run_query(reference, conversation, query))
            assert ids(await store.history(conversation, query)) == expected, (step, query)
        else:
            await persistent.close(store)
            store = await persistent.open(recent_lines=5)


def test_the_recent_window_answers_only_what_it_holds_and_exactly():
    """LATEST/BEFORE/AFTER answered from the lines at hand match a whole-history reference
    whenever the window says it covers them (random stamps, equal ones included)."""
    import random

    from twistedchat.storage.history import MemoryHistory, RecentLines, run_query

    rng = random.Random(11)
    covered = {"LATEST": 0, "BEFORE": 0, "AFTER": 0}
    refused = 0
    for trial in range(60):
        reference, at = MemoryHistory(), NOW
        total = rng.randint(1, 40)
        for n in range(total):
            at += rng.choice([0, 0, 0.001, 1, 7])
            reference.append(line(n, at))
        everything = run_query(reference, CHAN, q("LATEST", None, 1000))
        depth = rng.randint(1, 20)
        recent = RecentLines(depth=depth)
        recent.loading(CHAN)
        asked = max(depth, rng.randint(1, 20))
        recent.loaded(CHAN, everything[-asked:], asked)
        for _ in range(40):
            subcommand = rng.choice(["LATEST", "BEFORE", "AFTER"])
            pick = rng.choice(everything)
            if rng.random() < 0.5:
                selector = f"msgid={pick.msgid}"
            else:
                selector = stamp(pick.time + rng.choice([-0.001, 0, 0.001, -5, 5]))
            query = q(subcommand, selector, rng.randint(1, 12))
            answer = recent.covered(CHAN, query)
            if answer is None:
                refused += 1
                continue
            covered[subcommand] += 1
            assert ids(answer) == ids(run_query(reference, CHAN, query)), (trial, query)
    assert min(covered.values()) > 50 and refused > 50  # both ways, for every subcommand


@settles
async def test_reads_within_the_recent_window_need_no_query(persistent):
    store = await persistent.open(recent_lines=5)
    for n in range(10):
        store.append_history(line(n, NOW + n))
    assert ids(await store.history(CHAN, q("LATEST", None, 5))) == m(5, 6, 7, 8, 9)  # loads it
    interactions = []
    run_interaction = store._pool.runInteraction

    def counted(work, *args, **kwargs):
        if work != store._apply:  # reads only
            interactions.append(work)
        return run_interaction(work, *args, **kwargs)

    store._pool.runInteraction = counted
    assert ids(await store.history(CHAN, q("BEFORE", "msgid=m9", 3))) == m(6, 7, 8)
    assert ids(await store.history(CHAN, q("AFTER", "msgid=m6", 10))) == m(7, 8, 9)
    assert ids(await store.history(CHAN, q("LATEST", stamp(NOW + 7), 10))) == m(8, 9)
    assert interactions == []
    store.append_history(line(10, NOW + 10))  # said after the window was loaded: it is there
    assert ids(await store.history(CHAN, q("AFTER", "msgid=m8", 10))) == m(9, 10)
    assert interactions == []
    # What the window does not hold goes to the database (and is right).
    assert ids(await store.history(CHAN, q("BEFORE", "msgid=m7", 4))) == m(3, 4, 5, 6)
    assert ids(await store.history(CHAN, q("AFTER", "msgid=m2", 2))) == m(3, 4)
    assert len(interactions) == 2
    # Retention deletes lines: the window is not answered from any more (nothing stale).
    await store.prune_history(NOW + 100, None, 3)
    assert ids(await store.history(CHAN, q("AFTER", stamp(NOW + 6.5), 10))) == m(8, 9, 10)
    with pytest.raises(UnknownMessageId):
        await store.history(CHAN, q("AFTER", "msgid=m7", 10))
    assert len(interactions) > 2


# -- password threads, closing, the service -------------------------------------------------------------

@settles
async def test_password_work_has_its_own_bounded_threads():
    import threading

    from twistedchat.storage.passwords import PasswordsBusy, PasswordWorker

    worker = PasswordWorker(threads=1, max_pending=2)
    release = threading.Event()
    first = worker.run(release.wait, 30)
    second = worker.run(lambda: 42)
    with pytest.raises(PasswordsBusy, match="try again"):
        await worker.run(lambda: 43)  # refused at once, not queued
    release.set()
    assert await first is True and await second == 42
    assert worker.pending == 0
    assert await worker.run(lambda: 44) == 44  # room again
    worker.stop()


@settles
async def test_close_gives_up_on_a_database_that_never_answers(tmp_path):
    store = await open_store(f"sqlite:{tmp_path / 'down.sqlite3'}", retry_delay=0.01)
    real = store._pool.runInteraction

    def broken(work, *args, **kw):
        if work == store._apply:
            return defer.fail(sqlite3.OperationalError("database is locked"))
        return real(work, *args, **kw)

    store._pool.runInteraction = broken
    store.append_history(line(1))
    await store.close(timeout=0.2)  # returns instead of waiting forever
    assert store._closed and store._queued - store._written == 1


@settles
async def test_store_service_prunes_on_schedule_and_closes_on_stop(tmp_path):
    from twistedchat.storage.service import StoreService

    clock = task.Clock()
    clock.advance(NOW)
    store = await open_store(f"sqlite:{tmp_path / 'svc.sqlite3'}")
    store.append_history(line(1, NOW - 3 * 86400))
    store.append_history(line(2, NOW - 86400 / 2))
    prunes, counts = [], []
    real_prune = store.prune_history

    def watched(*args):
        prunes.append(real_prune(*args).addCallback(lambda count: counts.append(count) or count))
        return prunes[-1]

    store.prune_history = watched
    service = StoreService(store, clock, history_days=1, prune_interval=3600)
    service.startService()
    await prunes[0]  # at once: line 1 is three days old
    clock.advance(3600)
    await prunes[1]
    clock.advance(86400)  # line 2 is now a day and a half old
    await prunes[2]
    assert counts == [1, 0, 1]
    store.append_history(line(3, clock.seconds()))
    await service.stopService()  # flushes line 3, closes, stops the schedule
    clock.advance(3600)
    assert len(prunes) == 3
    again = await open_store(f"sqlite:{tmp_path / 'svc.sqlite3'}")
    assert ids(await again.history(CHAN, q("LATEST", None, 10))) == m(3)
    await again.close()


def test_memory_history_is_bounded_per_conversation():
    from twistedchat.storage.history import MemoryHistory, run_query

    history = MemoryHistory(max_lines=3)
    for n in range(5):
        history.append(line(n, NOW + n))
    assert ids(run_query(history, CHAN, q("LATEST", None, 10))) == m(2, 3, 4)
    assert history.locate(CHAN, "m0") is None and history.locate(CHAN, "m2") is not None


# -- copying a store (SQLite to PostgreSQL, or to a new file) ---------------------------------------------

@settles
async def test_copy_moves_everything_into_an_empty_database(persistent, tmp_path):
    from twistedchat.storage.copy import copy_store

    source_url = f"sqlite:{tmp_path / 'source.sqlite3'}"
    source = await open_store(source_url)
    await source.create_account("alice", "correct horse", NOW)
    store_state = dict(topic="kept", bans=[Ban("*!*@x", "alice", NOW)])
    source.register_channel("#lobby", "alice", NOW, **store_state)
    source.set_access("#lobby", "alice", "o")
    for n in range(12):
        source.append_history(line(n, NOW + n // 4))  # groups of four share a millisecond
    source.save_metadata("account:alice", "avatar", "https://a/x.png")
    source.save_read_marker("account:alice", "#lobby", "2026-01-01T00:00:00.000Z")
    await source.close()

    counts = await copy_store(source_url, persistent.url, page=5)
    assert counts == {
        "accounts": 1, "nicks": 1, "channels": 1, "metadata and read markers": 2, "lines": 12,
    }
    copied = await persistent.open()
    assert copied.registered_channel("#lobby").bans[0].mask == "*!*@x"
    assert copied.registered_channel("#lobby").access == {"alice": "o"}
    assert await copied.verify_password("alice", "correct horse") is not None
    assert await copied.owner_data("account:alice") == (
        {"avatar": "https://a/x.png"}, {"#lobby": "2026-01-01T00:00:00.000Z"},
    )
    assert ids(await copied.history(CHAN, q("BEFORE", "msgid=m6", 10))) == m(0, 1, 2, 3, 4, 5)
    await persistent.close(copied)
    with pytest.raises(StoreError, match="not empty"):
        await copy_store(source_url, persistent.url)


def test_copy_command_usage():
    from twistedchat.storage.copy import main

    assert main(["only-one-url"]) == 2


def test_parse_chathistory_commands():
    from twistedchat.storage.history import ChathistoryError, parse_chathistory

    latest = parse_chathistory(["latest", "#lobby", "*", "50"], max_limit=100)
    assert latest.target == "#lobby" and latest.query == HistoryQuery("LATEST", None, 50)
    capped = parse_chathistory(["BEFORE", "bob", "msgid=abc", "5000"], max_limit=100)
    assert capped.query == HistoryQuery("BEFORE", Selector(msgid="abc"), 100)
    between = parse_chathistory(
        ["BETWEEN", "#a", "msgid=x", "timestamp=2023-11-14T22:13:20.000Z", "10"], max_limit=100
    )
    assert between.query.end == Selector(time=NOW)
    targets = parse_chathistory(
        ["TARGETS", "timestamp=2023-11-14T22:13:20.000Z", "timestamp=2023-11-14T22:13:21.500Z", "20"],
        max_limit=100,
    )
    assert targets.span == (NOW, NOW + 1.5) and targets.limit == 20 and targets.query is None
    for params, code, context in [
        ([], "NEED_MORE_PARAMS", ("*",)),
        (["SEARCH", "#a"], "UNKNOWN_COMMAND", ("SEARCH",)),
        (["AROUND", "#a", "msgid=x"], "NEED_MORE_PARAMS", ("AROUND",)),
        (["LATEST", "#a", "*", "0"], "INVALID_PARAMS", ("LATEST", "0")),
        (["LATEST", "#a", "*", "-3"], "INVALID_PARAMS", ("LATEST", "-3")),
        (["AFTER", "#a", "when=now", "5"], "INVALID_PARAMS", ("AFTER", "when=now")),
        (["BEFORE", "#a", "*", "5"], "INVALID_PARAMS", ("BEFORE", "*")),
        (["TARGETS", "msgid=a", "timestamp=2023-11-14T22:13:20.000Z", "5"], "INVALID_PARAMS", ("TARGETS",)),
    ]:
        with pytest.raises(ChathistoryError) as refused:
            parse_chathistory(params, max_limit=100)
        assert (refused.value.code, refused.value.context) == (code, context), params


@settles
async def test_nothing_is_lost_when_postgresql_restarts(request, postgres_cluster):
    if postgres_cluster is None:
        pytest.skip("TWISTEDCHAT_TEST_POSTGRES names a server this test must not restart")
    from twisted.internet.threads import deferToThread

    empty_database(postgres_cluster.url)
    store = await open_store(postgres_cluster.url, retry_delay=0.05)
    store.append_history(line(1))
    assert ids(await store.history(CHAN, q("AFTER", stamp(0), 5))) == m(1)
    await defer.gatherResults([store.history(CHAN, q("AFTER", stamp(0), 5)) for _ in range(4)])
    await deferToThread(postgres_cluster.restart)  # every pooled connection is now dead
    # Reads meet the dead connections and are tried again on fresh ones.
    results = await defer.gatherResults(
        [store.history(CHAN, q("AFTER", stamp(0), 5)) for _ in range(4)]
    )
    assert [ids(found) for found in results] == [m(1)] * 4
    store.append_history(line(2))
    await store.flush()  # the batch fails on the dead connection, is kept, and retried
    assert ids(await store.history(CHAN, q("AFTER", stamp(0), 5))) == m(1, 2)
    await store.close()


@settles
async def test_a_record_the_database_refuses_does_not_block_the_others(persistent):
    store = await persistent.open()
    await store.create_account("alice", "long enough", NOW)
    store.append_history(line(1))
    store.append_history(line(2, text=None))  # NOT NULL: refused by the database
    store.append_history(line(3))
    store.register_channel("#lobby", "alice", NOW, topic="kept")
    await store.flush()  # does not wait forever on the bad line
    store.append_history(line(4))
    await persistent.close(store)
    again = await persistent.open()
    assert ids(await again.history(CHAN, q("AFTER", stamp(0), 10))) == m(1, 3, 4)
    assert again.registered_channel("#lobby").topic == "kept"


@settles
async def test_a_ban_mask_is_kept_once(stores):
    store = await stores.open()
    await store.create_account("alice", "long enough", NOW)
    store.register_channel("#lobby", "alice", NOW)
    bans = [Ban("*!*@a", "x", NOW), Ban("*!*@b", "x", NOW), Ban("*!*@a", "y", NOW + 1)]
    kept = store.update_channel("#lobby", bans=bans).bans
    assert [(ban.mask, ban.set_by) for ban in kept] == [("*!*@a", "x"), ("*!*@b", "x")]
    await store.flush()


# -- metadata and read markers kept for accounts and registered channels -----------------------------

@settles
async def test_account_and_channel_metadata_and_markers_survive_a_restart(persistent):
    from twistedchat.server.kept_owners import StoredMetadata, StoredReadMarkers

    store = await persistent.open()
    await store.create_account("alice", "long enough", NOW)
    store.register_channel("#lobby", "alice", NOW)
    metadata, markers = StoredMetadata(store), StoredReadMarkers(store, keep=2)
    metadata.put("account:alice", "avatar", "https://a/x.png")
    metadata.put("account:alice", "gone", "soon")
    metadata.put("account:alice", "gone", None)
    metadata.put("channel:#lobby", "url", "https://lobby")
    metadata.put("connection:7", "avatar", "not kept")
    metadata.put("channel:#unregistered", "url", "not kept")
    markers.put("account:alice", "#lobby", "2026-01-01T00:00:00.000Z")
    markers.put("account:alice", "bob", "2026-01-02T00:00:00.000Z")
    markers.put("account:alice", "#other", "2026-01-03T00:00:00.000Z")  # past keep=2: #lobby goes
    metadata.forget("account:alice")  # the last connection quit: gone from memory, not from storage
    await persistent.close(store)

    store = await persistent.open()
    metadata, markers = StoredMetadata(store), StoredReadMarkers(store, keep=2)
    assert dict(metadata.values("account:alice")) == {}  # not at hand until loaded
    for owner in ("account:alice", "channel:#lobby", "connection:7", "channel:#unregistered"):
        await metadata.load(owner)
        await markers.load(owner)
    assert dict(metadata.values("account:alice")) == {"avatar": "https://a/x.png"}
    assert dict(metadata.values("channel:#lobby")) == {"url": "https://lobby"}
    assert dict(metadata.values("connection:7")) == {}
    assert dict(metadata.values("channel:#unregistered")) == {}
    assert markers.get("account:alice", "#lobby") is None
    assert markers.get("account:alice", "#other") == "2026-01-03T00:00:00.000Z"
    # A key set while its owner loads is not undone by the load.
    metadata.forget("account:alice")
    loading = metadata.load("account:alice")
    metadata.put("account:alice", "avatar", "https://a/new.png")
    await loading
    assert metadata.values("account:alice")["avatar"] == "https://a/new.png"
    # Dropping the account and the channel deletes what was kept for them.
    store.drop_account("alice")
    assert await store.owner_data("account:alice") == ({}, {})
    assert await store.owner_data("channel:#lobby") == ({}, {})


# -- reads queued together -----------------------------------------------------------------------
@settles
async def test_history_reads_queued_meanwhile_share_one_pool_interaction(persistent):
    store = await persistent.open(recent_lines=0)  # every LATEST a query
    rooms = [channel_conversation(f"#room{n}") for n in range(6)]
    for n, room in enumerate(rooms):
        for k in range(3):
            store.append_history(line(n * 10 + k, NOW + k, conversation=room))
    await store.flush()
    interactions = []
    run_interaction = store._pool.runInteraction

    def counted(*args, **kwargs):
        interactions.append(args[0])
        return run_interaction(*args, **kwargs)

    store._pool.runInteraction = counted
    store.max_read_interactions = 1
    reads = [store.history(room, q("LATEST", None, 2)) for room in rooms]
    reads.append(store.history(rooms[0], q("BEFORE", "msgid=nope", 5)))  # fails alone
    reads.append(store.history(rooms[1], q("AFTER", "msgid=m10", 5)))
    results = await defer.DeferredList(reads, consumeErrors=True)
    assert [ids(found) for ok, found in results[:6]] == [
        [f"m{n * 10 + 1}", f"m{n * 10 + 2}"] for n in range(6)
    ]
    assert not results[6][0] and results[6][1].check(UnknownMessageId)
    assert results[7] == (True, [line(11, NOW + 1, conversation=rooms[1]),
                                 line(12, NOW + 2, conversation=rooms[1])])
    assert len(interactions) == 2  # the first read alone, then the seven queued behind it


@settles
async def test_a_history_read_after_closing_fails_at_once(persistent):
    store = await persistent.open(recent_lines=0)
    store.append_history(line(1))
    await persistent.close(store)
    read = store.history(CHAN, q("LATEST", None, 10))
    assert read.called  # not left waiting on a pool that will never run it
    with pytest.raises(StoreError, match="closed"):
        await read


@settles
async def test_a_read_queued_behind_others_sees_a_line_appended_before_it(persistent):
    store = await persistent.open(recent_lines=0)
    store.max_read_interactions = 1
    store.append_history(line(1, NOW))
    first = store.history(CHAN, q("LATEST", None, 10))
    store.append_history(line(2, NOW + 1))
    second = store.history(CHAN, q("LATEST", None, 10))
    assert ids(await first)[0] == "m1"  # (the later line may be written by then too)
    assert ids(await second) == ["m1", "m2"]
