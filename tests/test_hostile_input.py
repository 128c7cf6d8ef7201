"""A lone CR or a NUL inside a line, in every command that stores or relays text, over loopback.

Each is refused where the line is parsed, with a clear reply to the sender (a FAIL or an error
numeric, not ``400 Internal error``), nothing is logged as an error, nobody receives the
character, and afterwards every other user's JOIN, LIST, WHO, WHOIS, WHOWAS and PRIVMSG work as
before: nothing unsendable was stored.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from helpers import ErrorEvents, FakeClient, LineClient, clocked_factory, connect, register

from twistedchat.wire.message import Message, parse

ensure = pytest_twisted.ensureDeferred

#: The characters no stored or relayed text may hold (LF ends the line, so it cannot be inside).
BAD = {"cr": b"\r", "nul": b"\0"}

#: Lines from mallory (an operator of #c, with alice as a member); ``{bad}`` is the character.
REGISTERED_CASES = {
    "topic": b"TOPIC #c :in{bad}nocent",
    "away": b"AWAY :gone{bad}fishing",
    "part-reason": b"PART #c :bye{bad}now",
    "quit-reason": b"QUIT :bye{bad}now",
    "kick-reason": b"KICK #c alice :out{bad}now",
    "privmsg-channel": b"PRIVMSG #c :hello{bad}there",
    "privmsg-user": b"PRIVMSG alice :hello{bad}there",
    "notice": b"NOTICE #c :hello{bad}there",
    "nick": b"NICK mal{bad}lory",
    "mode-key": b"MODE #c +k se{bad}cret",
    "mode-ban": b"MODE #c +b ba{bad}d!*@*",
    "join-key": b"JOIN #locked se{bad}cret",
    "join-channel": b"JOIN #ba{bad}d",
    "tag-key": b"@+y=ok;+x{bad}ERROR PRIVMSG #c :hello",
    "tag-value": b"@+x=o{bad}k PRIVMSG #c :hello",
}

#: Lines from a connection that has not registered yet.
UNREGISTERED_CASES = {
    "user-realname": b"USER newbie 0 * :real{bad}name",
    "nick": b"NICK new{bad}bie",
}


def hostile(template: bytes, bad: bytes) -> bytes:
    return template.replace(b"{bad}", bad)


def clear_refusal(messages: list[Message]) -> list[Message]:
    """The replies that refuse a line clearly: FAIL, or an error numeric other than 400."""
    return [m for m in messages
            if m.command == "FAIL" or (m.command.isdigit() and m.command[0] in "45" and m.command != "400")]


def assert_never_received(clients: list[LineClient], bad: bytes) -> None:
    for client in clients:
        carrying = [line for line in client.raw if bad in line]
        assert not carrying, f"{client.nick} received {carrying}"


async def assert_others_unharmed(bob: LineClient, mallory_nick: str) -> None:
    """bob (never in #c) can still JOIN #c, LIST, WHO, WHOIS, WHOWAS and PRIVMSG, with no 400."""
    bob.skip()
    bob.send("JOIN #c")
    await bob.expect("366", None, "#c")
    bob.send("LIST")
    await bob.expect("323")
    bob.send("WHO #c")
    await bob.expect("315")
    bob.send("WHO *")
    await bob.expect("315")
    bob.send(f"WHOIS {mallory_nick}")
    await bob.expect("318")
    bob.send("WHOWAS ghost")
    await bob.expect("369")
    bob.send(f"PRIVMSG {mallory_nick} :still there?", "PRIVMSG #c :hello all")
    await bob.sync()
    internal = [m.to_line() for m in bob.messages if m.command == "400"]
    assert not internal, f"bob got internal errors: {internal}"


@pytest_twisted.async_yield_fixture
async def room(chat_server):
    """mallory (operator of #c), alice (member of #c), bob (not in #c); ghost came and went."""
    with ErrorEvents() as errors:
        ghost = await register(chat_server, "ghost")
        ghost.send("QUIT :bye")
        await ghost.wait_closed()
        mallory = await register(chat_server, "mallory", cap=True)
        alice = await register(chat_server, "alice")
        bob = await register(chat_server, "bob")
        carol = await register(chat_server, "carol")  # owns #locked, keyed
        carol.send("JOIN #locked", "MODE #locked +k hunter2")
        await carol.sync()
        mallory.send("CAP REQ :message-tags", "JOIN #c")
        await mallory.expect("366", None, "#c")
        alice.send("CAP REQ :message-tags", "JOIN #c")
        await alice.expect("366", None, "#c")
        mallory.send("TOPIC #c :a clean topic")
        await alice.expect("TOPIC")
        for client in (mallory, alice, bob, carol):
            client.skip()
        yield chat_server, errors, mallory, alice, bob, carol
        for client in (mallory, alice, bob, carol):
            if not client.is_closed:
                client.close()


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("case", sorted(REGISTERED_CASES))
@ensure
async def test_registered_line_with_bad_character_is_refused(room, case, bad):
    _server, errors, mallory, alice, bob, carol = room
    mallory.send(hostile(REGISTERED_CASES[case], BAD[bad]))
    replies = await mallory.sync()  # the connection goes on: PING still answered
    assert clear_refusal(replies), f"no clear refusal of {case}: {[m.to_line() for m in replies]}"
    await alice.sync()
    assert_never_received([mallory, alice, bob, carol], BAD[bad])
    # nothing of it was applied: mallory keeps nick, channel, topic; #c has no key or ban
    mallory.send("TOPIC #c", "MODE #c", "MODE #c b")
    await mallory.expect("332", None, "#c", "a clean topic")
    mode = await mallory.expect("324", None, "#c")
    assert "k" not in mode.params[2]
    await mallory.expect("368", None, "#c")
    assert not mallory.since("367")
    await assert_others_unharmed(bob, "mallory")
    alice_lines = await alice.sync()
    assert any(m.command == "PRIVMSG" and m.params[-1] == "hello all" for m in alice_lines)
    assert_never_received([mallory, alice, bob, carol], BAD[bad])
    assert not errors.events, "\n".join(errors.texts)


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("case", sorted(UNREGISTERED_CASES))
@ensure
async def test_unregistered_line_with_bad_character_is_refused(room, case, bad):
    server, errors, mallory, alice, bob, carol = room
    newbie = await connect(server.client_endpoint)
    newbie.nick = "newbie"
    if case == "nick":
        newbie.send(hostile(UNREGISTERED_CASES[case], BAD[bad]), "USER newbie 0 * :Newbie")
    else:
        newbie.send("NICK newbie", hostile(UNREGISTERED_CASES[case], BAD[bad]))
    replies = await newbie.sync()
    assert clear_refusal(replies), f"no clear refusal of {case}: {[m.to_line() for m in replies]}"
    assert not [m for m in replies if m.command == "001"], "registered with the bad line"
    # a clean second try registers, and what the others see of newbie is clean
    newbie.send("NICK newbie", "USER newbie 0 * :Newbie")
    await newbie.expect("001")
    newbie.send("JOIN #c")
    await alice.expect("JOIN", "#c", source="newbie!")
    await assert_others_unharmed(bob, "newbie")
    bob.send("WHOIS newbie")
    whois = await bob.expect("311", None, "newbie")
    assert whois.params[-1] == "Newbie"
    newbie.send("QUIT :done")
    await newbie.wait_closed()
    bob.send("WHOWAS newbie")
    await bob.expect("314", None, "newbie")
    await bob.expect("369")
    assert_never_received([newbie, mallory, alice, bob, carol], BAD[bad])
    assert not errors.events, "\n".join(errors.texts)


def test_pong_to_the_longest_ping_still_fits_512_bytes():
    """Found by the pipeline fuzz: ``PING :<504 bytes>`` was answered with a 538-byte PONG."""
    factory, clock = clocked_factory()
    client = FakeClient(factory, clock)
    client.send("NICK pinger", "USER pinger 0 * :P")
    client.received_raw()
    for token in ("x" * 504, "é" * 252, "😀" * 126):
        line = f"PING :{token}".encode()
        assert len(line) + 2 <= 512
        client.send(line)
        replies = client.received_raw()[:-2].split(b"\r\n")
        assert [parse(r).command for r in replies] == ["PONG"]
        assert len(replies[0]) + 2 <= 512, f"a PONG of {len(replies[0]) + 2} bytes"
        replies[0].decode("utf-8")  # cut on a character boundary
    factory.stopFactory()
