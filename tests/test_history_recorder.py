"""History recorded from the relay bus of a real core (no sockets), into the memory store."""

from __future__ import annotations

import pytest_twisted
from core_peers import FakeClock, make_core, register

from twistedchat.server.history_recorder import HistoryRecorder
from twistedchat.storage import HistoryQuery, channel_conversation, direct_conversation
from twistedchat.storage.memory import MemoryStore

LATEST = HistoryQuery("LATEST", None, 50)


def recording_core(accounts: dict[str, str]):
    clock = FakeClock()
    core = make_core(clock)
    store = MemoryStore()
    core.bus.subscribe(HistoryRecorder(store, lambda nick: accounts.get(nick.lower())))
    return core, clock, store


@pytest_twisted.ensureDeferred
async def test_channel_lines_are_stored_with_msgid_time_and_account():
    core, clock, store = recording_core({"alice": "alice"})
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("CAP REQ :message-tags server-time")
    alice.say("JOIN #Lobby")
    bob.say("JOIN #lobby")
    alice.say("@+draft/reply=abc PRIVMSG #lobby :hello")
    clock.now += 1.5
    bob.say("NOTICE #lobby :hi alice", "PRIVMSG #lobby :\x01ACTION waves\x01")
    bob.say("PRIVMSG #lobby :\x01VERSION\x01", "TOPIC #lobby :not a message")
    lines = await store.history(channel_conversation("#LOBBY"), LATEST)
    assert [(line.command, line.text, line.account) for line in lines] == [
        ("PRIVMSG", "hello", "alice"),
        ("NOTICE", "hi alice", None),
        ("PRIVMSG", "\x01ACTION waves\x01", None),
    ]
    first = lines[0]
    assert first.client_tags == {"+draft/reply": "abc"} and lines[1].client_tags is None
    assert first.sender.startswith("alice!") and first.target == "#Lobby"
    assert first.time == 1_800_000_000.0 and lines[1].time == 1_800_000_001.5
    # The msgid stored is the one members saw on the line.
    seen = [m for m in alice.take() if m.command == "NOTICE"]
    assert seen and seen[0].tags["msgid"] == lines[1].msgid


@pytest_twisted.ensureDeferred
async def test_private_lines_only_between_two_accounts():
    core, clock, store = recording_core({"alice": "alice", "bob": "bobby"})
    alice, bob, carol = register(core, "alice"), register(core, "bob"), register(core, "carol")
    alice.say("PRIVMSG bob :psst")
    bob.say("PRIVMSG alice :yes?")
    carol.say("PRIVMSG alice :I have no account")
    alice.say("PRIVMSG carol :nor is this kept")
    lines = await store.history(direct_conversation("bobby", "alice"), LATEST)
    assert [(line.text, line.parties) for line in lines] == [
        ("psst", ("alice", "bobby")), ("yes?", ("alice", "bobby")),
    ]
    assert await store.history(direct_conversation("alice", "carol"), LATEST) == []
