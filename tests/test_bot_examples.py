"""Each example bot against the real in-process daemon, plus reconnect and nick reclaiming."""

from __future__ import annotations

import random
from pathlib import Path

import pytest_twisted
from helpers import register, wait_until
from twisted.internet import reactor

from twistedchat.bot import Bot, make_service
from twistedchat.bot.tap import load_bot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def start_bot(chat_server, bot: Bot, channels=("#lobby",), nickname=None):
    """Run ``bot`` against the daemon and wait until it is in its channels."""
    service = make_service(bot, chat_server.client_endpoint, nickname=nickname,
                           channels=list(channels), reactor=reactor,
                           initial_delay=0.05, max_delay=0.2)
    service.startService()
    await wait_until(lambda: bot.joined_channels >= {c.lower() for c in channels},
                     f"{bot.nickname} joins {channels}")
    return service


async def human(chat_server, nick: str, channel: str = "#lobby"):
    client = await register(chat_server, nick)
    client.send(f"JOIN {channel}")
    await client.expect("366")
    return client


@pytest_twisted.ensureDeferred
async def test_echo_bot_repeats_in_channel_and_in_private(chat_server):
    bot = load_bot(EXAMPLES / "echobot.py")
    service = await start_bot(chat_server, bot)
    alice = await human(chat_server, "alice")
    try:
        alice.send("PRIVMSG #lobby :hello, é and 🎲")
        message = await alice.expect("PRIVMSG", "#lobby", source="echobot!")
        assert message.params[1] == "hello, é and 🎲"
        alice.send("PRIVMSG echobot :just us")
        message = await alice.expect("PRIVMSG", "alice", source="echobot!")
        assert message.params[1] == "just us"
    finally:
        alice.close()
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_dice_bot_rolls_and_explains_bad_input(chat_server):
    bot = load_bot(EXAMPLES / "dicebot.py")
    bot.dice = random.Random(7)
    expected = random.Random(7)
    rolls = [expected.randint(1, 6) for _ in range(2)]
    service = await start_bot(chat_server, bot)
    alice = await human(chat_server, "alice")
    try:
        alice.send("PRIVMSG #lobby :!roll 2d6")
        message = await alice.expect("PRIVMSG", "#lobby", source="dicebot!")
        assert message.params[1] == f"alice rolled {rolls[0]} + {rolls[1]} = {sum(rolls)}"
        alice.send("PRIVMSG #lobby :!roll lots")
        message = await alice.expect("PRIVMSG", "#lobby", source="dicebot!")
        assert "usage: !roll NdM" in message.params[1]
    finally:
        alice.close()
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_greeter_welcomes_newcomers(chat_server):
    bot = load_bot(EXAMPLES / "greeter.py")
    service = await start_bot(chat_server, bot)
    bob = await human(chat_server, "bob")
    try:
        message = await bob.expect("PRIVMSG", "#lobby", source="greeter!")
        assert message.params[1] == "Welcome to #lobby, bob!"
    finally:
        bob.close()
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_logger_writes_the_channel_to_a_file(chat_server, tmp_path):
    bot = load_bot(EXAMPLES / "logbot.py")
    bot.path = str(tmp_path / "lobby.log")
    service = await start_bot(chat_server, bot)
    alice = await human(chat_server, "alice")
    try:
        alice.send("PRIVMSG #lobby :first", "PRIVMSG #lobby :\x01ACTION waves\x01",
                   "PRIVMSG logbot :private, not logged", "PRIVMSG #lobby :third")
        await wait_until(lambda: Path(bot.path).exists()
                         and "third" in Path(bot.path).read_text(), "the log has the third line")
        lines = Path(bot.path).read_text(encoding="utf-8").splitlines()
        assert [line.split(" ", 1)[1] for line in lines] == [
            "#lobby <alice> first", "#lobby * alice waves", "#lobby <alice> third"]
        assert all(line.split(" ", 1)[0].endswith("Z") for line in lines)  # server-time stamps
    finally:
        alice.close()
        await service.stopService()


class Talkative(Bot):
    nickname = "talker"

    def __init__(self):
        super().__init__()
        self.sign_ons = 0

    def signed_on(self):
        self.sign_ons += 1


@pytest_twisted.ensureDeferred
async def test_bot_reconnects_and_rejoins_after_the_server_restarts(chat_server):
    bot = Talkative()
    service = await start_bot(chat_server, bot)
    try:
        await chat_server.stop()
        await wait_until(lambda: bot.client is None, "the bot notices the server is gone")
        await chat_server.start()
        await wait_until(lambda: bot.sign_ons == 2 and "#lobby" in bot.joined_channels,
                         "the bot is back in #lobby", timeout=10)
        alice = await human(chat_server, "alice")
        bot.say("#lobby", "back again")
        message = await alice.expect("PRIVMSG", "#lobby", source="talker!")
        assert message.params[1] == "back again"
        alice.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_long_reply_arrives_whole_in_lines_the_server_relays_uncut(chat_server):
    bot = Talkative()
    service = await start_bot(chat_server, bot)
    alice = await human(chat_server, "alice")
    try:
        text = " ".join(f"wörd{n}" for n in range(300))  # about 2,400 bytes
        bot.say("#lobby", text)
        pieces = []
        while " ".join(pieces) != text:
            message = await alice.expect("PRIVMSG", "#lobby", source="talker!")
            pieces.append(message.params[1])
            assert len(pieces) < 10, pieces
        assert len(pieces) > 4
    finally:
        alice.close()
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_bot_waits_for_its_nick_and_takes_it_when_freed(chat_server):
    holder = await human(chat_server, "talker")
    bot = Talkative()
    service = await start_bot(chat_server, bot)
    try:
        assert bot.client.nickname == "talker_"
        holder.send("QUIT :bye")
        await wait_until(lambda: bot.client.nickname == "talker", "the bot takes its nick")
        alice = await human(chat_server, "alice")
        bot.say("#lobby", "I am talker")
        message = await alice.expect("PRIVMSG", "#lobby", source="talker!")
        assert message.params[1] == "I am talker"
        alice.close()
    finally:
        await service.stopService()


class Chatty(Bot):
    nickname = "chatty"

    def __init__(self, burst: int, rate: float):
        super().__init__()
        self.burst, self.rate = burst, rate
        self.losses = 0

    def connection_lost(self):
        self.losses += 1


@pytest_twisted.ensureDeferred
async def test_a_paced_bot_is_not_killed_for_flooding_where_an_unpaced_one_is(chat_server):
    # A tight server flood limit (5 lines at once, then 20 per second, at most 10 held back)
    # so the test is quick; the bot's defaults stay inside the default limit the same way.
    config = chat_server.factory.config
    config.flood_burst, config.flood_rate, config.flood_queue = 5, 20.0, 10
    alice = await human(chat_server, "alice")
    lines = [f"line {n}" for n in range(60)]
    try:
        unpaced = Chatty(burst=1000, rate=1e6)
        service = await start_bot(chat_server, unpaced)
        for line in lines:
            unpaced.say("#lobby", line)
        await wait_until(lambda: unpaced.losses, "the unpaced bot is disconnected")
        await service.stopService()

        paced = Chatty(burst=4, rate=15.0)
        service = await start_bot(chat_server, paced)
        alice.skip()
        for line in lines:
            paced.say("#lobby", line)
        for line in lines:
            message = await alice.expect("PRIVMSG", "#lobby", source="chatty!", timeout=15)
            assert message.params[1] == line
        assert paced.losses == 0 and paced.client is not None
        await service.stopService()
    finally:
        alice.close()
