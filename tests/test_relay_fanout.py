"""The relay's fan-out loop: local users are woken once, users on other nodes cost no call."""

from __future__ import annotations

from twistedchat.server.relay import REMOTE_OUTBOX, Relay
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
