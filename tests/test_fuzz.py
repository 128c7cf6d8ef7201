"""Whatever a client sends, no handler raises: random commands and parameters through the core."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twistedchat.server.commands import COMMANDS as TABLE
from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.server.state import CHANLIMIT
from twistedchat.wire.message import Message, parse

COMMANDS = sorted(TABLE) + ["FOO", "001"]

_param = st.one_of(
    st.sampled_from(["#c", "#d", "alice", "bob", "*", "0", "+o", "-v", "+b", "+k", "+l", "+ovk",
                     "-lk", "b", ":x", "::y", "+bb", "+kb", "LS", "302", "REQ", "END", "LIST", "#c,#d", "alice,bob", ":x",
                     "", "-", "+imnst", "+z", "admin", "secret", "multi-prefix", "-echo-message",
                     # issue 13: MONITOR, METADATA, WHOX, MARKREAD, STATUSMSG, lists and extbans
                     "+", "C", "L", "S", "GET", "SET", "SUB", "UNSUB", "SUBS", "SYNC", "CLEAR",
                     "avatar", "%tcuihsnfdlaor,1", "@#c", "+#c", "+B", "+w", "+e", "+I",
                     "m:x", "~m:alice", "timestamp=2026-01-01T00:00:00.000Z",
                     "draft/metadata-2 extended-monitor setname draft/read-marker"]),
    st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
            max_size=600),
)


def fresh_core() -> tuple[ServerCore, list]:
    core = ServerCore(ServerConfig(opers={"admin": "secret"}), clock=lambda: 1_800_000_000.0)
    users = []
    for nick in ("alice", "bob", "carol"):
        user = core.connect("127.0.0.1", lambda u: None, lambda: None)
        for line in (f"NICK {nick}", f"USER {nick} 0 * :{nick}", "JOIN #c"):
            core.handle(user, parse(line))
        users.append(user)
    users.append(core.connect("127.0.0.1", lambda u: None, lambda: None))  # unregistered
    return core, users


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(COMMANDS),
                          st.lists(_param, max_size=5)), min_size=1, max_size=12))
def test_random_commands_never_raise(script):
    core, users = fresh_core()
    for index, command, params in script:
        user = users[index]
        if user not in core.state.connections:
            continue
        core.handle(user, Message(command, tuple(params)))
        for someone in users:  # the sender's replies and what was relayed to the others
            for data in someone.outbox:
                assert data.endswith(b"\r\n")
                for line in data.splitlines():
                    assert parse(line).command  # everything queued is a well-formed line
                    body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
                    assert len(body) <= 510
            someone.outbox.clear()
    # the state stays consistent: every membership is mutual, every channel non-empty
    for channel in core.state.channels.values():
        assert channel.members
        for member in channel.members:
            assert member.channels[channel.folded] is channel
    registered = [u for u in core.state.connections if u.registered]
    assert core.state.registered_count == len(registered)
    assert core.state.invisible_count == sum("i" in u.modes for u in registered)
    assert core.state.oper_count == sum("o" in u.modes for u in registered)
    for user in core.state.connections:
        for folded, channel in user.channels.items():
            assert user in channel.members and channel.folded == folded
        assert len(user.invites) <= CHANLIMIT
    assert all(user.registered for user in core.state.users.values())
    # issue 13's indexes agree with what each connection holds
    for folded, watchers in core.state.watchers.items():
        assert watchers and all(folded in w.monitoring and w in core.state.connections
                                for w in watchers)
    for user in core.state.connections:
        assert all(user in core.state.watchers[f] for f in user.monitoring)
    assert core.state.wallops == {u for u in core.state.connections if "w" in u.modes}
