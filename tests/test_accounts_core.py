"""Accounts on the sans-IO core with a memory store: nick ownership on a task.Clock, the account
capabilities (account-notify, extended-join, account-tag), WHOIS 330 and WHOX %a, ChanServ."""

from __future__ import annotations

import pytest
import pytest_twisted
from core_peers import FakeClock, make_core, register
from twisted.internet import task

from twistedchat.server.accounts import attach_store
from twistedchat.storage.memory import MemoryStore

PASSWORD = "correct-horse-battery"


@pytest.fixture
def setup():
    clock = FakeClock()
    core = make_core(clock)
    timers = task.Clock()
    store = MemoryStore()
    accounts = attach_store(core, store, timers)
    return core, store, accounts, timers


async def _account(store: MemoryStore, name: str) -> None:
    await store.create_account(name, PASSWORD, 0.0)


@pytest_twisted.ensureDeferred
async def test_owned_nick_renamed_to_a_guest_after_the_timeout(setup):
    core, store, accounts, timers = setup
    await _account(store, "owner")
    squatter = register(core, "owner")
    watcher = register(core, "watcher")
    squatter.say("JOIN #room")
    watcher.say("JOIN #room")
    timers.advance(29.0)
    assert squatter.user.nick == "owner"
    timers.advance(1.5)
    assert squatter.user.nick.startswith("Guest")
    nick_lines = [m for m in watcher.received if m.command == "NICK"]
    assert nick_lines and nick_lines[0].params[0] == squatter.user.nick


@pytest_twisted.ensureDeferred
async def test_owned_nick_warned_and_kept_after_identifying(setup):
    core, store, accounts, timers = setup
    await _account(store, "owner")
    peer = register(core, "owner")
    assert peer.user.nick == "owner"
    # register() cleared the outbox; the warning came with registration: ask again by NICK
    replies = peer.say("NICK other", "NICK owner")
    warned = [m for m in replies if m.command == "NOTICE" and m.source.startswith("NickServ")]
    assert warned and "identify" in warned[0].params[1].lower()
    accounts.log_in(peer.user, "owner")
    timers.advance(60.0)
    assert peer.user.nick == "owner"


@pytest_twisted.ensureDeferred
async def test_account_notify_extended_join_account_tag_whois_whox(setup):
    core, store, accounts, timers = setup
    await _account(store, "alice")
    alice = register(core, "alice")
    bob = register(core, "bob")
    bob.say("CAP REQ :account-notify extended-join account-tag")
    bob.say("JOIN #room")
    joins = [m for m in alice.say("JOIN #room") and bob.take() if m.command == "JOIN"]
    assert joins[0].params == ("#room", "*", "Real alice")
    accounts.log_in(alice.user, "alice")
    assert [m.params for m in bob.received if m.command == "ACCOUNT"] == [("alice",)]
    bob.take()
    alice.say("PRIVMSG #room :tagged")
    said = [m for m in bob.take() if m.command == "PRIVMSG"]
    assert said[0].tags.get("account") == "alice"
    whois = bob.say("WHOIS alice")
    assert any(m.command == "330" and m.params[2] == "alice" for m in whois)
    who = bob.say("WHO #room %na")
    assert any(m.command == "354" and m.params[-1] == "alice" for m in who)


@pytest_twisted.ensureDeferred
async def test_chanserv_access_list_gives_status_on_join(setup):
    core, store, accounts, timers = setup
    for name in ("founder", "helper"):
        await _account(store, name)
    founder = register(core, "founder")
    accounts.log_in(founder.user, "founder")
    founder.say("JOIN #club", "PRIVMSG ChanServ :REGISTER #club",
                "PRIVMSG ChanServ :ACCESS #club ADD helper op")
    assert store.registered_channel("#club").access == {"helper": "o"}
    helper = register(core, "helper")
    accounts.log_in(helper.user, "helper")
    helper.say("JOIN #club")
    assert core.state.find_channel("#club").members[helper.user] == "o"
    stranger = register(core, "stranger")
    replies = stranger.say("PRIVMSG ChanServ :OP #club stranger")
    assert "identified" in replies[-1].params[1]
    founder.say("TOPIC #club :kept", "MODE #club +l 5")
    kept = store.registered_channel("#club")
    assert kept.topic == "kept" and kept.limit == 5


def test_service_nicks_are_reserved(setup):
    core, store, accounts, timers = setup
    peer = register(core, "someone")
    assert peer.say("NICK NickServ")[0].command == "432"


def test_labeled_response_tags_one_line_batches_several_acks_none():
    core = make_core(FakeClock())
    peer = register(core, "labeler")
    peer.say("CAP REQ :labeled-response batch")
    [pong] = peer.say("@label=one PING token")
    assert pong.command == "PONG" and pong.tags == {"label": "one"}
    joined = peer.say("@label=two JOIN #labels")
    assert joined[0].command == "BATCH" and joined[0].tags == {"label": "two"}
    assert joined[0].params[1] == "labeled-response" and joined[-1].command == "BATCH"
    ref = joined[0].params[0][1:]
    assert all(m.tags.get("batch") == ref for m in joined[1:-1]) and len(joined) > 3
    [ack] = peer.say("@label=three PONG token")
    assert ack.command == "ACK" and ack.tags == {"label": "three"}
    unlabeled = register(core, "plain")
    assert "label" not in unlabeled.say("@label=four PING token")[0].tags


def test_chathistory_batch_carries_the_label(setup):
    core, store, accounts, timers = setup
    peer = register(core, "reader")
    peer.say("CAP REQ :labeled-response batch message-tags", "JOIN #told", "PRIVMSG #told :hi")
    peer.take()
    lines = peer.say("@label=h1 CHATHISTORY LATEST #told * 5")  # the memory store answers at once
    assert lines[0].command == "BATCH" and lines[0].tags.get("label") == "h1"
    assert [m.params[1] for m in lines if m.command == "PRIVMSG"] == ["hi"]


def test_chathistory_lines_kept_encoded_follow_each_readers_caps_and_new_lines(setup):
    core, store, accounts, timers = setup
    tagged = register(core, "tagged")
    tagged.say("CAP REQ :batch server-time message-tags", "JOIN #kept", "PRIVMSG #kept :one",
               "PRIVMSG #kept :two")
    plain = register(core, "plain")
    plain.say("CAP REQ :batch", "JOIN #kept")
    tagged.take(), plain.take()

    def said(peer):
        return [m for m in peer.say("CHATHISTORY LATEST #kept * 10") if m.command == "PRIVMSG"]

    first = said(tagged)
    assert [m.params[1] for m in first] == ["one", "two"]
    assert all({"time", "msgid", "batch"} <= set(m.tags) for m in first)
    bare = said(plain)  # the same lines, encoded without the tags this reader did not ask for
    assert [m.params[1] for m in bare] == ["one", "two"]
    assert all(set(m.tags) == {"batch"} for m in bare)
    tagged.say("PRIVMSG #kept :three")
    again = said(tagged)  # a line said after the others were encoded and kept is there too
    assert [m.params[1] for m in again] == ["one", "two", "three"]
    assert [m.tags["msgid"] for m in again[:2]] == [m.tags["msgid"] for m in first]
    assert again[0].tags["batch"] != first[0].tags["batch"]  # each answer its own batch
    assert len(accounts.encoder) == 5  # two variants of the first two lines, one of the third


@pytest_twisted.ensureDeferred
async def test_nickserv_info_ghost_drop(setup):
    core, store, accounts, timers = setup
    await _account(store, "keeper")
    ghost = register(core, "keeper")
    me = register(core, "keeper2")
    assert "identified" in me.say("PRIVMSG NickServ :GHOST keeper")[-1].params[1]
    accounts.log_in(me.user, "keeper")
    assert "registered" in me.say("PRIVMSG NickServ :INFO keeper")[-1].params[1]
    me.say("PRIVMSG NickServ :GHOST keeper")
    assert ghost.closed
    me.say(f"PRIVMSG NickServ :DROP {PASSWORD}")
    from twistedchat.bot.testing import wait_until

    await wait_until(lambda: store.account("keeper") is None, "the account to be dropped")
    assert "dropped" in me.take()[-1].params[1] and me.user.account is None


@pytest_twisted.ensureDeferred
async def test_accounts_created_per_address_are_limited(setup):
    core, store, accounts, timers = setup
    for n in range(5):
        peer = register(core, f"maker{n}", host="192.0.2.7")
        peer.say(f"REGISTER * * {PASSWORD}")
        await wait_for_account(store, f"maker{n}")
    late = register(core, "maker5", host="192.0.2.7")
    [fail] = late.say(f"REGISTER * * {PASSWORD}")
    assert fail.command == "FAIL" and fail.params[1] == "TEMPORARILY_UNAVAILABLE"
    elsewhere = register(core, "other", host="198.51.100.1")
    elsewhere.say(f"REGISTER * * {PASSWORD}")
    await wait_for_account(store, "other")


async def wait_for_account(store: MemoryStore, name: str) -> None:
    from twistedchat.bot.testing import wait_until

    await wait_until(lambda: store.account(name) is not None, f"the account {name}")


def test_chathistory_targets_before_after_and_unknown_msgid(setup):
    core, store, accounts, timers = setup
    peer = register(core, "reader")
    peer.say("CAP REQ :batch message-tags echo-message", "JOIN #a", "JOIN #b")
    sent = []
    for n in range(5):
        core.clock.now += 1
        echoed = peer.say(f"PRIVMSG #a :a{n}")
        sent.append(echoed[0].tags["msgid"])
    peer.say("PRIVMSG #b :b0")
    targets = peer.say("CHATHISTORY TARGETS timestamp=1970-01-01T00:00:00.000Z "
                       "timestamp=2100-01-01T00:00:00.000Z 10")
    assert targets[0].params[1] == "draft/chathistory-targets"
    assert sorted(m.params[1] for m in targets if m.command == "CHATHISTORY") == ["#a", "#b"]
    before = peer.say(f"CHATHISTORY BEFORE #a msgid={sent[3]} 2")
    assert [m.params[1] for m in before if m.command == "PRIVMSG"] == ["a1", "a2"]
    after = peer.say(f"CHATHISTORY AFTER #a msgid={sent[3]} 5")
    assert [m.params[1] for m in after if m.command == "PRIVMSG"] == ["a4"]
    unknown = peer.say("CHATHISTORY BEFORE #a msgid=nosuch 5")
    assert [m.command for m in unknown] == ["BATCH", "BATCH"]  # an empty batch


def test_a_bad_db_url_is_a_usage_error_naming_the_option():
    from twisted.python import usage

    from twistedchat.server.tap import Options

    options = Options()
    with pytest.raises(usage.UsageError, match="--db"):
        options.parseOptions(["--db", "mysql://chat@db/chat"])
    options = Options()
    options.parseOptions(["--db", "memory:", "--history-days", "7"])
    assert options.chat_config.db == "memory:" and options.chat_config.history_days == 7
