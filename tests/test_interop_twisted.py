"""Twisted's own ``twisted.words.protocols.irc.IRCClient``, unmodified, against the daemon.

The subclass below only records IRCClient's callbacks; all protocol handling is IRCClient's.
Runs in-process on the suite's Qt reactor.
"""

from __future__ import annotations

import pytest_twisted
from helpers import EventLog, register
from twisted.internet import endpoints, reactor
from twisted.words.protocols import irc

ensure = pytest_twisted.ensureDeferred


class RecordingClient(irc.IRCClient):
    """IRCClient as shipped; each callback is written to an :class:`EventLog`."""

    def __init__(self, nickname: str) -> None:
        self.nickname = nickname
        self.realname = f"{nickname} via IRCClient"
        self.log = EventLog()

    def signedOn(self) -> None:
        self.log.add("signedOn")

    def joined(self, channel: str) -> None:
        self.log.add("joined", channel)

    def userJoined(self, user: str, channel: str) -> None:
        self.log.add("userJoined", user, channel)

    def userLeft(self, user: str, channel: str) -> None:
        self.log.add("userLeft", user, channel)

    def userQuit(self, user: str, quitMessage: str) -> None:
        self.log.add("userQuit", user, quitMessage)

    def userRenamed(self, oldname: str, newname: str) -> None:
        self.log.add("userRenamed", oldname, newname)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        self.log.add("privmsg", user.split("!")[0], channel, message)

    def noticed(self, user: str, channel: str, message: str) -> None:
        self.log.add("noticed", user.split("!")[0], channel, message)

    def action(self, user: str, channel: str, data: str) -> None:
        self.log.add("action", user.split("!")[0], channel, data)

    def topicUpdated(self, user: str, channel: str, newTopic: str) -> None:
        self.log.add("topicUpdated", user, channel, newTopic)

    def modeChanged(self, user: str, channel: str, set: bool, modes: str, args: tuple) -> None:
        self.log.add("modeChanged", channel, set, modes, args)

    def irc_RPL_NAMREPLY(self, prefix: str, params: list[str]) -> None:
        self.log.add("names", params[2], params[3].split())

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        self.log.add("connectionLost")


async def connect_ircclient(server, nickname: str) -> RecordingClient:
    client = RecordingClient(nickname)
    endpoint = endpoints.clientFromString(reactor, server.client_endpoint)
    await endpoints.connectProtocol(endpoint, client)
    await client.log.expect("signedOn")
    return client


@ensure
async def test_ircclient_registers_joins_and_talks(chat_server):
    alice = await connect_ircclient(chat_server, "alice")
    alice.join("#lobby")
    await alice.log.expect("joined", "#lobby")
    # IRCClient parsed our ISUPPORT (it came after 001, before the JOIN reply).
    assert alice.supported.getFeature("PREFIX") == {"o": ("@", 0), "v": ("+", 1)}
    assert alice.supported.getFeature("CHANTYPES") == ("#",)
    assert alice.supported.getFeature("NICKLEN") == 30
    assert alice.supported.getFeature("CHANMODES")["param"] == "k"
    _, _, names = await alice.log.expect("names", "#lobby")
    assert names == ["@alice"]

    bob = await connect_ircclient(chat_server, "bob")
    bob.join("#lobby")
    await bob.log.expect("joined", "#lobby")
    await alice.log.expect("userJoined", "bob", "#lobby")

    raw = await register(chat_server, "carol")  # a raw client takes part too
    raw.send("JOIN #lobby")
    await raw.expect("366")
    await alice.log.expect("userJoined", "carol", "#lobby")

    alice.say("#lobby", "hello from alice")
    await bob.log.expect("privmsg", "alice", "#lobby", "hello from alice")
    await raw.expect("PRIVMSG", "#lobby", "hello from alice", source="alice!")
    bob.msg("alice", "private hello")
    await alice.log.expect("privmsg", "bob", "alice", "private hello")
    bob.notice("#lobby", "a notice")
    await alice.log.expect("noticed", "bob", "#lobby", "a notice")
    alice.describe("#lobby", "waves")
    await bob.log.expect("action", "alice", "#lobby", "waves")
    raw.send("PRIVMSG #lobby :from the raw client")
    await alice.log.expect("privmsg", "carol", "#lobby", "from the raw client")

    alice.topic("#lobby", "IRCClient was here")
    await bob.log.expect("topicUpdated", "alice", "#lobby", "IRCClient was here")
    alice.mode("#lobby", True, "v", user="bob")
    await bob.log.expect("modeChanged", "#lobby", True, "v", ("bob",))

    bob.setNick("robert")
    await alice.log.expect("userRenamed", "bob", "robert")

    raw.send("PART #lobby :bye")
    await alice.log.expect("userLeft", "carol", "#lobby")
    await bob.log.expect("userLeft", "carol", "#lobby")

    bob.quit("off I go")
    await alice.log.expect("userQuit", "robert", "Quit: off I go")
    await bob.log.expect("connectionLost")

    alice.quit("done")
    await alice.log.expect("connectionLost")
    raw.close()
