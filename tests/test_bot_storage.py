"""Item 4: self.db, a scoped SQLite key/value store through adbapi, casemapping-aware."""

from __future__ import annotations

import pytest
import pytest_twisted

from twistedchat.bot import Bot
from twistedchat.bot.storage import MAX_VALUE_BYTES, Store, StoreError
from twistedchat.wire.names import casefold


class Keeper(Bot):
    nickname = "keeper"


@pytest.fixture
def store(tmp_path):
    """A store in a fresh file, closed after the test."""
    opened = Store(str(tmp_path / "kv.sqlite3"), casefold)
    yield opened
    opened.close()


@pytest_twisted.ensureDeferred
async def test_values_are_scoped_by_nick_channel_or_global(store):
    await store.set("greeting", "hi all")
    await store.set("greeting", "hi alice", nick="alice")
    await store.set("greeting", {"text": "hi lobby"}, channel="#lobby")
    assert await store.get("greeting") == "hi all"
    assert await store.get("greeting", nick="alice") == "hi alice"
    assert await store.get("greeting", channel="#lobby") == {"text": "hi lobby"}
    assert await store.get("greeting", "none", nick="bob") == "none"
    await store.delete("greeting", nick="alice")
    assert await store.get("greeting", nick="alice") is None


@pytest_twisted.ensureDeferred
async def test_nicks_and_channels_are_folded_with_the_casemapping(store):
    await store.set("karma", 3, nick="[Alice]")
    assert await store.get("karma", nick="{alice}") == 3
    await store.set("topic", "x", channel="#Lobby")
    assert await store.get("topic", channel="#LOBBY") == "x"


@pytest_twisted.ensureDeferred
async def test_add_counts_items_and_scan(store):
    assert await store.add("karma", nick="Bob") == 1
    assert await store.add("karma", 5, nick="bob") == 6
    assert await store.add("karma", -1, nick="carol") == -1
    await store.set("note:1", "a", nick="bob")
    await store.set("note:2", "b", nick="bob")
    await store.set("note_x", "not a note", nick="bob")
    assert await store.items(nick="bob", prefix="note:") == {"note:1": "a", "note:2": "b"}
    assert await store.scan("karma") == {"bob": 6, "carol": -1}
    await store.set("text", "words", nick="bob")
    with pytest.raises(StoreError):
        await store.add("text", nick="bob")


@pytest_twisted.ensureDeferred
async def test_bad_keys_and_values_fail_clearly(store):
    with pytest.raises(StoreError):
        await store.set("", 1)
    with pytest.raises(StoreError):
        await store.set("k" * 500, 1)
    with pytest.raises(StoreError):
        await store.set("big", "x" * MAX_VALUE_BYTES)
    with pytest.raises(StoreError):
        await store.set("odd", object())
    with pytest.raises(StoreError):
        await store.get("both", nick="a", channel="#b")


@pytest_twisted.ensureDeferred
async def test_values_survive_a_new_bot_on_the_same_file(tmp_path):
    first = Keeper()
    first.database = str(tmp_path / "keeper.sqlite3")
    first.start()
    await first.db.set("count", 41, channel="#lobby")
    first.stop()
    second = Keeper()
    second.database = first.database
    second.start()
    try:
        assert await second.db.add("count", channel="#Lobby") == 42
    finally:
        second.stop()


@pytest_twisted.ensureDeferred
async def test_the_database_work_happens_off_the_reactor_thread(store):
    import threading

    reactor_thread = threading.get_ident()
    threads = []
    pending = store._pool.runInteraction(lambda cursor: threads.append(threading.get_ident()))
    stored = store.set("k", 1)
    assert not stored.called  # the call returned before SQLite ran
    await pending
    await stored
    assert threads and threads[0] != reactor_thread
