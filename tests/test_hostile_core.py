"""What a hostile client tries against the server's rules (issue 8), each kept out by a test.

Sans-IO: the core with list sinks and a fake clock, so every test is exact and fast.
"""

from __future__ import annotations

import pytest
from core_peers import FakeClock, Peer, commands, make_core, register

from twistedchat.server.core import ServerCore
from twistedchat.wire import numerics as N

#: A mask a backtracking matcher needs hours for against a 30-letter nick (each ``*a`` ×3-4).
PATHOLOGICAL = "*a" * 20 + "*b"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(clock: FakeClock) -> ServerCore:
    return make_core(clock)


def all_lines(*peers: Peer) -> list[bytes]:
    """Every line the peers were sent so far (what ``take`` saw and what is still queued)."""
    lines = []
    for peer in peers:
        for data in [*peer.raw, *peer.user.outbox]:
            lines.extend(data.splitlines(keepends=True))
    return lines


def assert_lines_fit(*peers: Peer) -> None:
    for line in all_lines(*peers):
        body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
        assert len(body) <= 512, line


# -- item 2: masks in linear time --------------------------------------------------------------


def test_pathological_ban_mask_through_join(core):
    alice = register(core, "alice")
    alice.say("JOIN #trap", f"MODE #trap +b {PATHOLOGICAL}")
    victim = Peer(core)
    victim.say("NICK " + "a" * 30, "USER " + "a" * 10 + " 0 * :x")
    got = victim.say("JOIN #trap")
    assert commands(got)[0] == "JOIN"  # no b in the nick: not banned, and answered at once
    banned = register(core, "a" * 29 + "b")
    assert commands(banned.say("JOIN #trap")) == [N.ERR_BANNEDFROMCHAN]


def test_pathological_who_mask(core):
    asker = register(core, "asker")
    for index in range(5):
        register(core, "a" * 28 + f"x{index}")
    register(core, "a" * 29 + "b")
    got = asker.say(f"WHO {PATHOLOGICAL}")
    assert [m.params[5] for m in got if m.command == N.RPL_WHOREPLY] == ["a" * 29 + "b"]
