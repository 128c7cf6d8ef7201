"""The ``irc`` package from PyPI (jaraco's ``irc.client``) against the daemon.

Its Reactor has a select loop of its own; here a Twisted ``LoopingCall`` turns it with
``process_once(0)`` (never blocking), so both clients share the suite's Qt reactor.
"""

from __future__ import annotations

import irc.client
import pytest_twisted
from helpers import EventLog, register
from twisted.internet import reactor, task

ensure = pytest_twisted.ensureDeferred


class PypiClient:
    """One ``irc.client`` connection whose events land in an :class:`EventLog`."""

    def __init__(self, server, nickname: str) -> None:
        self.log = EventLog()
        self.irc_reactor = irc.client.Reactor()
        self.irc_reactor.add_global_handler("all_events", self._record, -20)
        self.connection = self.irc_reactor.server().connect(
            server.host, server.port, nickname, ircname=f"{nickname} via irc.client"
        )
        self.turns = task.LoopingCall(self.irc_reactor.process_once, 0)
        self.turns.clock = reactor
        self.turns.start(0.01)

    def _record(self, connection, event) -> None:
        source = event.source.nick if hasattr(event.source, "nick") else event.source
        self.log.add(event.type, source, event.target, tuple(event.arguments))

    def stop(self) -> None:
        if self.turns.running:
            self.turns.stop()
        self.connection.close()


@ensure
async def test_irc_package_client_registers_joins_and_talks(chat_server):
    alice = PypiClient(chat_server, "alice")
    bob = None
    raw = None
    try:
        await alice.log.expect("welcome", None, "alice")
        features = await alice.log.expect("featurelist")
        assert "CASEMAPPING=rfc1459" in features[3]
        await alice.log.expect("nomotd")  # the fixture's daemon has no MOTD: 422
        assert alice.connection.features.network == "TestNet"
        assert dict(alice.connection.features.prefix) == {"@": "o", "+": "v"}

        alice.connection.join("#lobby")
        await alice.log.expect("join", "alice", "#lobby")
        names = await alice.log.expect("namreply")
        assert names[3][-1].split() == ["@alice"]

        bob = PypiClient(chat_server, "bob")
        await bob.log.expect("welcome")
        bob.connection.join("#lobby")
        await bob.log.expect("join", "bob", "#lobby")
        await alice.log.expect("join", "bob", "#lobby")

        raw = await register(chat_server, "carol")
        raw.send("JOIN #lobby")
        await raw.expect("366")
        await alice.log.expect("join", "carol", "#lobby")

        alice.connection.privmsg("#lobby", "hello from irc.client")
        await bob.log.expect("pubmsg", "alice", "#lobby", ("hello from irc.client",))
        await raw.expect("PRIVMSG", "#lobby", "hello from irc.client", source="alice!")
        raw.send("PRIVMSG #lobby :hi from raw", "PRIVMSG bob :just for bob")
        await alice.log.expect("pubmsg", "carol", "#lobby", ("hi from raw",))
        await bob.log.expect("privmsg", "carol", "bob", ("just for bob",))
        bob.connection.action("#lobby", "dances")
        await alice.log.expect("action", "bob", "#lobby", ("dances",))

        raw.send("PART #lobby :leaving")
        await alice.log.expect("part", "carol", "#lobby", ("leaving",))
        bob.connection.quit("bye now")
        await alice.log.expect("quit", "bob", None, ("Quit: bye now",))
        await bob.log.expect("disconnect")
    finally:
        for client in (alice, bob):
            if client is not None:
                client.stop()
        if raw is not None:
            raw.close()
