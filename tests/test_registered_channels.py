"""A live channel saved to its registration and restored from it, round trip through a store."""

from __future__ import annotations

import pytest_twisted

from twistedchat.server.registered import prefixes_for, restore, saved_state
from twistedchat.server.state import Channel
from twistedchat.storage import open_store

NOW = 1_700_000_000.0


@pytest_twisted.ensureDeferred
async def test_channel_state_round_trip(tmp_path):
    url = f"sqlite:{tmp_path / 'chan.sqlite3'}"
    store = await open_store(url)
    await store.create_account("alice", "long enough", NOW)
    await store.create_account("bob", "long enough", NOW)
    live = Channel("#Lobby", NOW)
    live.topic, live.topic_setter, live.topic_time = "welcome", "alice!a@h", NOW + 5
    live.modes = {"n", "t", "m", "s"}
    live.key, live.limit = "sesame", 25
    live.bans = {"*!*@spam": ("alice!a@h", NOW + 1), "troll!*@*": ("alice!a@h", NOW + 2)}
    store.register_channel(live.name, "alice", NOW, **saved_state(live))
    store.set_access("#lobby", "bob", "v")
    await store.close()

    again = await open_store(url)
    registered = again.registered_channel("#LOBBY")
    fresh = Channel("#Lobby", NOW + 100)
    restore(fresh, registered)
    assert (fresh.topic, fresh.topic_setter, fresh.topic_time) == ("welcome", "alice!a@h", NOW + 5)
    assert (fresh.modes, fresh.key, fresh.limit) == ({"n", "t", "m", "s"}, "sesame", 25)
    assert fresh.bans == live.bans and list(fresh.bans) == list(live.bans)
    assert prefixes_for(registered, "alice") == "o"
    assert prefixes_for(registered, "bob") == "v"
    assert prefixes_for(registered, "carol") == "" and prefixes_for(registered, None) == ""
    await again.close()
