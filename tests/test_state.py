"""Names, masks and membership in the chat state, without any server around them."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedchat.server.state import (
    ChatState,
    User,
    casefold,
    mask_matches,
    normalize_mask,
    valid_channel_name,
    valid_nick,
)


def make_user(state: ChatState, nick: str) -> User:
    user = User("10.0.0.1", lambda data: None, lambda: None)
    user.username = "~" + nick
    state.add_connection(user)
    state.set_nick(user, nick)
    state.mark_registered(user)
    return user


def test_casefold_rfc1459():
    assert casefold("Nick[Away]\\~") == "nick{away}|^"


@pytest.mark.parametrize("nick", ["alice", "Bob_", "[x]", "a-1", "`q", "x" * 30])
def test_valid_nicks(nick):
    assert valid_nick(nick)


@pytest.mark.parametrize("nick", ["", "1abc", "-a", "a b", "a!b", "a@b", "#chan", "x" * 31, "é"])
def test_invalid_nicks(nick):
    assert not valid_nick(nick)


@pytest.mark.parametrize("name", ["#a", "#lobby", "#Ünïcödé", "#a-b.c"])
def test_valid_channels(name):
    assert valid_channel_name(name)


@pytest.mark.parametrize("name", ["#", "lobby", "&x", "#a b", "#a,b", "#a:b", "#a\x07", "#" + "x" * 50])
def test_invalid_channels(name):
    assert not valid_channel_name(name)


def test_masks():
    assert normalize_mask("bob") == "bob!*@*"
    assert normalize_mask("*@host") == "*!*@host"
    assert normalize_mask("bob!x") == "bob!x@*"
    assert mask_matches("BOB!*@*", "bob!~b@1.2.3.4")
    assert mask_matches("*!*@1.2.3.?", "x!y@1.2.3.4")
    assert not mask_matches("*!*@1.2.3.?", "x!y@1.2.3.44")
    assert mask_matches("a[b]!*@*", "A{B}!u@h")
    assert not mask_matches("a.c!*@*", "abc!u@h")


def _reference_match(mask: str, name: str) -> bool:
    """The old backtracking regex: right, but exponential on masks like ``*a*a*a*b``."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.fullmatch(pattern, name, re.DOTALL) is not None


@given(st.text("ab?*", max_size=8), st.text("ab", max_size=10))
def test_mask_matcher_agrees_with_a_regex(mask, name):
    assert mask_matches(mask, name) == _reference_match(mask, name)


def test_mask_matching_does_not_backtrack():
    """25 stars against 30 letters: a backtracking matcher would run for hours here."""
    mask = "*a" * 25 + "*b"
    assert not mask_matches(mask, "a" * 30 + "!~" + "a" * 10 + "@" + "a" * 60)
    assert mask_matches(mask, "a" * 30 + "b")


def test_join_part_and_empty_channel_disappears():
    state = ChatState()
    alice, bob = make_user(state, "alice"), make_user(state, "bob")
    channel = state.join(alice, "#Room", 0.0)
    state.join(bob, "#room", 0.0)
    assert channel.members == {alice: "o", bob: ""}
    assert state.find_channel("#ROOM") is channel
    assert state.neighbours(alice) == {bob}
    state.part(alice, channel)
    state.part(bob, channel)
    assert state.find_channel("#room") is None


def test_nick_change_rekeys_user():
    state = ChatState()
    alice = make_user(state, "alice")
    state.set_nick(alice, "Alicia")
    assert state.find_user("alicia") is alice
    assert state.find_user("alice") is None
    assert state.nick_in_use("ALICIA")
    assert not state.nick_in_use("alicia", by=alice)


def test_remove_forgets_everything():
    state = ChatState()
    alice, bob = make_user(state, "alice"), make_user(state, "bob")
    state.join(alice, "#a", 0.0)
    state.join(bob, "#a", 0.0)
    state.remove(alice)
    assert state.find_user("alice") is None
    assert alice not in state.find_channel("#a").members
    assert alice not in state.connections


def test_speaking_rules():
    state = ChatState()
    alice, bob, out = (make_user(state, n) for n in ("alice", "bob", "out"))
    channel = state.join(alice, "#c", 0.0)
    state.join(bob, "#c", 0.0)
    assert not channel.can_speak(out)
    channel.modes.discard("n")
    assert channel.can_speak(out)
    channel.modes.add("m")
    assert not channel.can_speak(bob) and channel.can_speak(alice)
    channel.modes.discard("m")
    channel.bans["bob!*@*"] = ("alice", 0.0)
    assert not channel.can_speak(bob)
    channel.members[bob] = "v"
    assert channel.can_speak(bob)


@pytest.mark.parametrize(
    ("name", "chantypes", "expected"),
    [("#a", "#", True), ("&a", "#", False), ("&a", "#&", True), ("", "#&", False),
     ("bob", "#&", False), ("#", "#", True)],
)
def test_one_channel_name_test_for_every_side(name, chantypes, expected):
    from twistedchat.wire.names import is_channel_name

    assert is_channel_name(name, chantypes) is expected
