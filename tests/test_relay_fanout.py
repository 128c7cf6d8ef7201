"""The relay's fan-out loop: local users are woken once, users on other nodes cost no call."""

from __future__ import annotations

from twistedchat.server.channel import REMOTE_OUTBOX
from twistedchat.server.relay import Relay
from twistedchat.server.state import User
from twistedchat.wire.message import parse


def test_remote_users_are_skipped_without_waking_or_queuing() -> None:
    woken: list[str] = []

    def wake(user: User) -> None:
        woken.append(user.host)

    def close() -> None:
        pass

    local = User("local.example", wake, close)
    remote = User("remote.example", wake, close)
    remote.outbox = REMOTE_OUTBOX
    relay = Relay(parse("PRIVMSG #c :hello"), now=0.0)

    relay.send_to([local, remote, local])

    assert woken == ["local.example"]
    assert local.outbox == [relay.body, relay.body]
    assert len(REMOTE_OUTBOX) == 0


def test_a_channel_keeps_its_members_on_this_node_apart() -> None:
    """``members.local`` follows every way a member comes and goes; remote members never in it."""
    import pytest

    from twistedchat.server.state import ChatState

    def nothing(*args: object) -> None:
        pass

    state = ChatState()
    here, there, later = (User(f"{n}.example", nothing, nothing) for n in ("here", "there", "later"))
    there.outbox = REMOTE_OUTBOX
    for user, nick in ((here, "here"), (there, "there"), (later, "later")):
        user.nick, user.folded = nick, nick
    channel = state.join(here, "#c", 0.0)
    state.join(there, "#c", 0.0)
    state.join(later, "#c", 0.0)
    assert list(channel.members) == [here, there, later]
    assert list(channel.members.local) == [here, later]
    channel.set_prefixes(there, "o")
    channel.set_prefixes(later, "v")
    assert list(channel.members.local) == [here, later]
    state.part(here, channel)
    del channel.members[later]
    assert list(channel.members) == [there] and not channel.members.local
    channel.members[later] = ""
    assert channel.members.pop(later) == "" and channel.members.pop(later, None) is None
    assert not channel.members.local
    with pytest.raises(TypeError):
        channel.members.update({later: ""})


def test_a_channel_message_never_walks_remote_members() -> None:
    """A channel PRIVMSG's fan-out walks only the members on this node: a remote member's outbox
    is not even looked at (here, one swapped after the join would show it)."""
    from twisted.internet import task

    from twistedchat.server.config import ServerConfig
    from twistedchat.server.net import ChatFactory

    class Outlet:
        def __init__(self) -> None:
            self.data = b""

        def write(self, data: bytes) -> None:
            self.data += data

        def abort(self) -> None:
            pass

        def close(self) -> None:
            pass

    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="here.test", flood_rate=0), clock=clock)
    outlets = [Outlet(), Outlet()]
    pipelines = [factory.open_pipeline("192.0.2.1", outlets[0]),
                 factory.open_pipeline("192.0.2.2", outlets[1])]
    for pipeline, nick in zip(pipelines, ("alice", "bob"), strict=True):
        for line in (f"NICK {nick}", f"USER {nick} 0 * :{nick}", "JOIN #c"):
            pipeline.line_received(line.encode())
    remote = User("remote.example", lambda user: None, lambda: None)
    remote.outbox = REMOTE_OUTBOX
    remote.nick, remote.folded, remote.registered = "carol", "carol", True
    factory.core.state.users["carol"] = remote
    factory.core.state.join(remote, "#c", 0.0)
    looked_at: list[bytes] = []
    remote.outbox = looked_at  # a walk over remote members would now queue the line here
    pipelines[0].line_received(b"PRIVMSG #c :hello")
    clock.advance(0)
    assert b"PRIVMSG #c hello\r\n" in outlets[1].data
    assert looked_at == []
