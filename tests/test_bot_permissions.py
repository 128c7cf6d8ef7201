"""Items 2 and 5: @require (op, voice, accounts, masks) with one refusal, SASL, @rate with one notice."""

from __future__ import annotations

import pytest

from twistedchat.bot import Bot, command, on_message, rate, require
from twistedchat.bot.testing import FakeServer

ACCOUNT_CAPS = ("multi-prefix", "account-tag", "extended-join", "account-notify", "message-tags")


class Guarded(Bot):
    nickname = "guard"
    channels = ["#lobby"]

    @command("opsonly")
    @require(op=True)
    def ops_only(self, event):
        return "op ok"

    @command("voiced")
    @require(voice=True)
    def voiced(self, event):
        return "voice ok"

    @require(accounts=["Alice"])
    @command("mine")
    def mine(self, event):
        return f"hello {event.account}"

    @command("masked")
    @require(masks=["*!*@trusted.example"])
    def masked(self, event):
        return "mask ok"

    @command("karma")
    @rate(user=10, channel=4)
    def karma(self, event):
        return "counted"

    @on_message(r"\+\+$")
    @rate(user=30)
    def plusplus(self, event):
        return f"{event.nick} plus"


def lobby(caps=ACCOUNT_CAPS, **options):
    bot = Guarded()
    server = FakeServer(bot, caps=caps, **options).register()
    server.join("#lobby", "alice", "bob", "carol", ops=["alice"], voiced=["bob"])
    server.sent()
    return bot, server


def test_op_and_voice_checks_use_the_channel_state_and_refuse_with_one_notice():
    bot, server = lobby()
    server.say("alice", "#lobby", "!opsonly")
    server.say("bob", "#lobby", "!opsonly")
    server.say("bob", "#lobby", "!voiced")
    server.say("alice", "#lobby", "!voiced")  # op counts as voice
    server.say("carol", "#lobby", "!voiced")
    assert server.sent() == [
        "PRIVMSG #lobby :op ok",
        "NOTICE bob :Sorry, you need to be a channel operator to use !opsonly.",
        "PRIVMSG #lobby :voice ok",
        "PRIVMSG #lobby :voice ok",
        "NOTICE carol :Sorry, you need to have voice to use !voiced.",
    ]


def test_op_status_follows_mode_changes_and_is_never_true_in_private():
    bot, server = lobby()
    server.send(":alice!alice@users.test MODE #lobby -o alice")
    server.say("alice", "#lobby", "!opsonly")
    server.send(":alice!alice@users.test MODE #lobby +o carol")
    server.say("carol", "#lobby", "!opsonly")
    server.say("carol", "guard", "opsonly")
    lines = server.sent()
    assert lines[0].startswith("NOTICE alice :Sorry")
    assert lines[1] == "PRIVMSG #lobby :op ok"
    assert lines[2].startswith("NOTICE carol :Sorry")


def test_accounts_come_from_the_account_tag_case_insensitively():
    bot, server = lobby()
    server.say("carol", "#lobby", "!mine", account="alice")
    server.say("mallory", "#lobby", "!mine")
    server.say("alice", "#lobby", "!mine", account="bob")
    lines = server.sent()
    assert lines[0] == "PRIVMSG #lobby :hello alice"
    assert lines[1].startswith("NOTICE mallory :Sorry, you need to be logged in")
    assert lines[2].startswith("NOTICE alice :Sorry")


def test_accounts_come_from_extended_join_and_account_notify_without_tags():
    bot, server = lobby(caps=("multi-prefix", "extended-join", "account-notify"))
    server.user_joins("dave", "#lobby", account="Alice")
    server.say("dave", "#lobby", "!mine")
    server.send(":dave!dave@users.test ACCOUNT *")
    server.say("dave", "#lobby", "!mine")
    server.user_joins("erin", "#lobby", account="*")
    server.send(":erin!erin@users.test ACCOUNT alice")
    server.say("erin", "#lobby", "!mine")
    lines = server.sent()
    assert lines[0] == "PRIVMSG #lobby :hello Alice"
    assert lines[1].startswith("NOTICE dave :Sorry")
    assert lines[2] == "PRIVMSG #lobby :hello alice"


def test_accounts_come_from_whox_when_the_server_advertises_it():
    bot = Guarded()
    server = FakeServer(bot, isupport=("CASEMAPPING=rfc1459", "PREFIX=(ov)@+", "WHOX")).register()
    server.join("#lobby", "carol")
    assert "WHO #lobby %tcuhnfa,152" in server.sent()
    server.send(":fake.server 354 guard 152 #lobby carol host.example carol H alice",
                ":fake.server 354 guard 999 #lobby x y carol H mallory",  # not our token
                ":fake.server 315 guard #lobby :End of WHO")
    assert bot.state.person("carol").account == "alice"
    assert bot.state.person("carol").host == "host.example"
    server.say("carol", "#lobby", "!mine")
    assert server.sent() == ["PRIVMSG #lobby :hello alice"]


def test_the_caps_the_bot_asks_for_include_the_account_ones():
    bot = Guarded()
    server = FakeServer(bot, caps=ACCOUNT_CAPS)
    server.send(":fake.server CAP * LS :" + " ".join(ACCOUNT_CAPS))
    request = [line for line in server.sent() if line.startswith("CAP REQ")]
    assert set(request[0].split(":", 1)[1].split()) == set(ACCOUNT_CAPS)


def test_masks_match_the_full_source():
    bot, server = lobby()
    server.send(":zed!z@trusted.example PRIVMSG #lobby :!masked",
                ":zed!z@elsewhere.example PRIVMSG #lobby :!masked")
    lines = server.sent()
    assert lines[0] == "PRIVMSG #lobby :mask ok"
    assert lines[1].startswith("NOTICE zed :Sorry, you need to match an allowed host mask")


def test_require_needs_a_condition():
    with pytest.raises(ValueError):
        require()


def test_sasl_plain_logs_in_before_registration_ends():
    bot = Guarded()
    server = FakeServer(bot, caps=("sasl", "multi-prefix"), accounts={"guard": "s3cret"},
                        sasl_password="s3cret")
    server.register()
    lines = server.sent()
    assert bot.account == "guard"
    assert bot.client._registered
    commands = [line.split()[0] for line in lines]
    assert commands.index("AUTHENTICATE") < lines.index("CAP END")


def test_sasl_exchange_lines_and_failure_still_registers():
    bot = Guarded()
    server = FakeServer(bot, caps=("sasl",), accounts={"guard": "right"}, sasl_password="wrong")
    server.send(":fake.server CAP * LS :sasl")
    assert "CAP REQ :sasl" in server.sent()
    server.send(":fake.server CAP * ACK :sasl")
    assert server.sent() == ["AUTHENTICATE PLAIN"]
    server.send("AUTHENTICATE +")
    payload = server.sent()
    assert payload == ["AUTHENTICATE Z3VhcmQAZ3VhcmQAd3Jvbmc="]  # guard\0guard\0wrong
    server.send(":fake.server 904 * :SASL authentication failed")
    assert server.sent() == ["CAP END"]
    assert bot.account is None


def test_without_a_password_the_bot_does_not_ask_for_sasl():
    bot = Guarded()
    server = FakeServer(bot, caps=("sasl", "multi-prefix"))
    server.send(":fake.server CAP * LS :sasl multi-prefix")
    assert "CAP REQ :multi-prefix" in server.sent()


def test_rate_limits_per_user_and_per_channel_with_a_single_notice():
    bot, server = lobby()
    server.say("alice", "#lobby", "!karma")
    server.say("alice", "#lobby", "!karma")
    server.say("alice", "#lobby", "!karma")
    server.say("bob", "#lobby", "!karma")  # the channel limit (4 s) holds bob too
    assert server.sent() == ["PRIVMSG #lobby :counted",
                             "NOTICE alice :Please wait 10 s before using !karma again.",
                             "NOTICE bob :Please wait 4 s before using !karma again."]
    server.advance(4)
    server.say("bob", "#lobby", "!karma")
    server.say("alice", "#lobby", "!karma")  # still inside her 10 s, already told: silence
    assert server.sent() == ["PRIVMSG #lobby :counted"]
    server.advance(6)
    server.say("alice", "#lobby", "!karma")
    assert server.sent() == ["PRIVMSG #lobby :counted"]


def test_rate_applies_to_message_handlers_too():
    bot, server = lobby()
    server.say("alice", "#lobby", "bob++")
    server.say("alice", "#lobby", "bob++")
    server.say("alice", "#lobby", "bob++")
    assert server.sent() == ["PRIVMSG #lobby :alice plus",
                             "NOTICE alice :Please wait 30 s before using that again."]


def test_the_rate_table_is_bounded():
    from twistedchat.bot.permissions import Rate, RateGate

    gate = RateGate(max_entries=100)
    for n in range(1000):
        assert gate.check("h", Rate(user=60), f"user{n}", None, now=n * 0.001) == 0.0
    assert len(gate._next) <= 100


def test_rate_limit_is_rate_under_a_name_the_rate_setting_cannot_hide():
    from twistedchat.bot import rate_limit

    class Paced(Bot):
        rate = 1.0

        @command("slow")
        @rate_limit(user=5)
        def slow(self, event):
            return "ok"

    server = FakeServer(Paced()).register()
    server.sent()
    server.say("alice", "chatbot", "slow")
    server.say("alice", "chatbot", "slow")
    assert server.sent() == ["PRIVMSG alice :ok",
                             "NOTICE alice :Please wait 5 s before using !slow again."]


def test_a_handler_that_hides_a_bot_method_is_refused_with_a_clear_error():
    class Clash(Bot):
        @command("kick")
        def kick(self, event):
            return "x"

    with pytest.raises(TypeError, match="Clash.kick hides Bot.kick"):
        Clash()


def test_a_guarded_message_handler_skips_other_peoples_lines_without_a_notice():
    class Watch(Bot):
        @on_message(r"^!!")
        @require(op=True)
        def shout(self, event):
            return "op shouted"

    bot = Watch()
    server = FakeServer(bot).register().join("#lobby", "alice", "bob", ops=["alice"])
    server.sent()
    server.say("bob", "#lobby", "!! hey")
    server.say("alice", "#lobby", "!! hey")
    assert server.sent() == ["PRIVMSG #lobby :op shouted"]


def test_a_guarded_message_handler_does_not_explain_itself_on_command_lines():
    class Both(Bot):
        @command("ping")
        def ping(self, event):
            return "pong"

        @on_message()
        @require(op=True)
        @rate(user=60)
        def audit(self, event):
            return None

    bot = Both()
    server = FakeServer(bot).register().join("#lobby", "alice", "bob", ops=["alice"])
    server.sent()
    server.say("bob", "#lobby", "!ping")
    server.say("alice", "#lobby", "!ping")
    server.say("alice", "#lobby", "!ping")
    assert server.sent() == ["PRIVMSG #lobby :pong", "PRIVMSG #lobby :pong",
                             "PRIVMSG #lobby :pong",
                             "NOTICE alice :Please wait 60 s before using that again."]
