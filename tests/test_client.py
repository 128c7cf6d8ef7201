"""The client layer: CAP negotiation, tags, NAMES, channel tracking, registration failures, backoff."""

from __future__ import annotations

import pytest_twisted
from helpers import wait_until
from twisted.internet import defer, reactor, task
from twisted.internet.testing import StringTransport

from twistedchat.client.protocol import (
    ChatClient,
    ChatClientFactory,
    parse_tags,
    reconnecting_service,
    split_prefixes,
)


class Recorder(ChatClient):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def capsNegotiated(self, enabled):
        self.events.append(("caps", frozenset(enabled)))

    def namesReceived(self, channel, members):
        self.events.append(("names", channel, members))

    def registrationFailed(self, reason):
        self.events.append(("failed", reason))

    def privmsg(self, user, channel, message):
        self.events.append(("privmsg", user, channel, message, dict(self.current_tags)))

    def signedOn(self):
        super().signedOn()
        self.events.append(("signedOn",))


def connected(nick: str = "bot", channels=("#lobby",), password=None) -> tuple[Recorder, StringTransport]:
    factory = ChatClientFactory(nick, channels, password=password)
    factory.protocol = Recorder
    client = factory.buildProtocol(None)
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport


def sent(transport: StringTransport) -> list[str]:
    lines = transport.value().decode().split("\r\n")
    transport.clear()
    return [line for line in lines if line]


def feed(client: ChatClient, *lines: str) -> None:
    for line in lines:
        client.dataReceived(line.encode() + b"\r\n")


def test_cap_ls_comes_first_and_only_offered_caps_are_requested():
    client, transport = connected(password="pw")
    assert sent(transport) == ["CAP LS 302", "PASS pw", "NICK bot", "USER bot foo bar :twistedchat client"]
    feed(client, ":srv CAP * LS * :multi-prefix sasl", ":srv CAP * LS :server-time=x echo-message")
    assert sent(transport) == ["CAP REQ :multi-prefix server-time"]
    feed(client, ":srv CAP * ACK :multi-prefix server-time")
    assert sent(transport) == ["CAP END"]
    assert client.events == [("caps", frozenset({"multi-prefix", "server-time"}))]


def test_server_without_caps_still_registers():
    client, transport = connected()
    sent(transport)
    feed(client, ":srv CAP * LS :sasl")
    assert sent(transport) == ["CAP END"]
    feed(client, ":srv 001 bot :Welcome")
    assert ("signedOn",) in client.events
    assert sent(transport) == ["JOIN #lobby"]


def test_nak_ends_negotiation():
    client, transport = connected()
    sent(transport)
    feed(client, ":srv CAP * LS :away-notify", ":srv CAP * NAK :away-notify")
    assert sent(transport)[-1] == "CAP END"
    assert client.enabled_caps == set()


def test_tags_are_stripped_and_exposed_during_callbacks():
    client, _ = connected()
    feed(client, "@time=2026-01-01T10:00:00.000Z;+x=a\\sb :al!u@h PRIVMSG #lobby :hello")
    (event,) = [e for e in client.events if e[0] == "privmsg"]
    assert event[1:4] == ("al!u@h", "#lobby", "hello")
    assert event[4] == {"time": "2026-01-01T10:00:00.000Z", "+x": "a b"}
    assert client.current_tags == {}


def test_names_are_collected_with_prefixes():
    client, _ = connected()
    feed(client, ":srv 005 bot PREFIX=(ov)@+ :are supported",
         ":srv 353 bot = #lobby :@+alice bob", ":srv 353 bot = #lobby :+carol",
         ":srv 366 bot #lobby :End")
    assert ("names", "#lobby", [("@+", "alice"), ("", "bob"), ("+", "carol")]) in client.events


def test_nick_in_use_tries_variants_then_gives_up():
    client, transport = connected()
    sent(transport)
    for _ in range(3):
        feed(client, ":srv 433 * bot :in use")
    assert sent(transport) == ["NICK bot_", "NICK bot__", "NICK bot___"]
    feed(client, ":srv 433 * bot___ :in use")
    assert client.events[-1][0] == "failed"
    assert transport.disconnecting


def test_bad_password_and_erroneous_nick_are_reported():
    client, _ = connected()
    feed(client, ":srv 464 bot :Password incorrect")
    assert client.events[-1] == ("failed", "The server password was wrong")
    client, transport = connected("9bad")
    feed(client, ":srv 432 * 9bad :Erroneous nickname")
    assert "9bad" in client.events[-1][1]
    assert transport.disconnecting


def test_factory_channels_follow_joins_parts_and_kicks():
    client, _ = connected(channels=["#lobby"])
    feed(client, ":srv 001 bot :hi", ":bot!u@h JOIN #dev", ":bot!u@h JOIN #ops",
         ":bot!u@h PART #lobby", ":op!u@h KICK #ops bot :out")
    assert client.factory.channels == ["#dev"]


def test_backoff_grows_and_is_capped():
    clock = task.Clock()
    attempts: list[float] = []

    class RefusingEndpoint:
        def connect(self, factory):
            attempts.append(clock.seconds())
            return defer.fail(ConnectionRefusedError())

    service = reconnecting_service(clock, RefusingEndpoint(), ChatClientFactory("x"), max_delay=8)
    service.startService()
    for _ in range(40):
        clock.advance(1)
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert len(attempts) >= 5
    assert gaps[0] <= 3 and max(gaps) <= 10 and gaps[-1] >= 8 and gaps[1] > gaps[0]
    service.stopService()


def test_helpers():
    assert parse_tags("a=1;b;c=x\\:y") == {"a": "1", "b": "", "c": "x;y"}
    assert split_prefixes("@+nick", "@+") == ("@+", "nick")
    assert split_prefixes("nick", "@+") == ("", "nick")


class Talker(Recorder):
    instances: list[Talker] = []

    def connectionMade(self):
        super().connectionMade()
        Talker.instances.append(self)


@pytest_twisted.ensureDeferred
async def test_two_clients_talk_through_the_real_daemon_and_rejoin_after_restart(chat_server):
    Talker.instances = []
    factories = []
    services = []
    for nick in ("ann", "ben"):
        factory = ChatClientFactory(nick, ["#lobby"])
        factory.protocol = Talker
        factories.append(factory)
        service = reconnecting_service(reactor, chat_server.client_endpoint, factory,
                                       initial_delay=0.05, max_delay=0.2)
        service.startService()
        services.append(service)
    try:
        await wait_until(lambda: len(chat_server.factory.core.state.find_channel("#lobby").members
                                     if chat_server.factory.core.state.find_channel("#lobby")
                                     else ()) == 2, "both in #lobby")
        ann, ben = Talker.instances
        assert "server-time" in ann.enabled_caps
        ann.msg("#lobby", "hi ben")
        await wait_until(lambda: any(e[0] == "privmsg" for e in ben.events), "ben hears ann")
        (event,) = [e for e in ben.events if e[0] == "privmsg"]
        assert event[2:4] == ("#lobby", "hi ben") and "time" in event[4]
        # The server goes away and comes back: both reconnect and are back in #lobby.
        await chat_server.stop()
        await chat_server.start()
        await wait_until(lambda: len(Talker.instances) >= 4, "both reconnect", timeout=10)
        await wait_until(lambda: (ch := chat_server.factory.core.state.find_channel("#lobby"))
                         and len(ch.members) == 2, "both rejoin #lobby", timeout=10)
    finally:
        for service in services:
            await service.stopService()
