"""Item 8: per-bot settings from a TOML file and --set key=value on twistd chatbot."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.python import usage

from twistedchat.bot import Bot
from twistedchat.bot.config import ConfigError, apply_settings, parse_assignment
from twistedchat.bot.tap import Options, makeService

BOT_FILE = """
from twistedchat.bot import Bot

class Configured(Bot):
    nickname = "configured"
    greeting = "hello"
    limit = 3
"""


def bot_file(tmp_path: Path) -> str:
    path = tmp_path / "configured.py"
    path.write_text(BOT_FILE)
    return str(path)


def test_a_toml_file_then_set_then_options_configure_the_bot(tmp_path):
    config = tmp_path / "bot.toml"
    config.write_text('nickname = "fromfile"\nchannels = ["#a", "#b"]\nrate = 1\n'
                      'greeting = "hi from the file"\nlimit = 5\nserver = "tcp:127.0.0.1:7000"\n'
                      'password = "pw"\n')
    options = Options()
    options.parseOptions(["--config", str(config), "--set", "limit=7", "--set", "burst=4",
                          "--set", "greeting=plain words", bot_file(tmp_path)])
    bot = options["bot"]
    assert (bot.nickname, bot.channels, bot.rate, bot.burst) == ("fromfile", ["#a", "#b"], 1.0, 4)
    assert (bot.greeting, bot.limit) == ("plain words", 7)
    assert options["server"] == "tcp:127.0.0.1:7000" and options["password"] == "pw"
    service = makeService(options)
    assert service.bot is bot and bot.factory.sasl_password == "pw"


def test_command_line_options_beat_the_file(tmp_path):
    config = tmp_path / "bot.toml"
    config.write_text('server = "tcp:127.0.0.1:7000"\nnickname = "fromfile"\n')
    options = Options()
    options.parseOptions(["--config", str(config), "--server", "tcp:127.0.0.1:8000",
                          "--nick", "fromflag", bot_file(tmp_path)])
    assert options["server"] == "tcp:127.0.0.1:8000"
    assert makeService(options).bot.nickname == "fromflag"


def test_channels_from_set_may_be_a_comma_list():
    assert parse_assignment("channels=#a,#b") == ("channels", "#a,#b")
    bot = Bot()
    apply_settings(bot, {"channels": "#a,#b"})
    assert bot.channels == ["#a", "#b"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"nosuch": 1}, "unknown setting 'nosuch'"),
    ({"rate": "fast"}, "rate: expected a number"),
    ({"burst": 1.5}, "burst: expected a whole number"),
    ({"burst": 0}, "burst: must be above 0"),
    ({"bot_mode": "maybe"}, "bot_mode: expected true or false"),
    ({"nickname": "bad nick"}, "not a valid nickname"),
    ({"channels": ["lobby"]}, "not a channel name"),
    ({"client_class": "x"}, "unknown setting 'client_class'"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ConfigError, match=message):
        apply_settings(Bot(), settings)


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "novalue"], "expected KEY=VALUE"),
    (["--set", "nosuch=1"], "unknown setting"),
    (["--config", "/nonexistent.toml"], "/nonexistent.toml"),
    (["--config", "BROKEN"], "not valid TOML"),
    (["--set", "server=1234"], "server: expected text"),
])
def test_bad_config_on_the_command_line_is_a_usage_error(tmp_path, args, message):
    broken = tmp_path / "broken.toml"
    broken.write_text("= nope")
    args = [str(broken) if a == "BROKEN" else a for a in args]
    with pytest.raises(usage.UsageError, match=message):
        Options().parseOptions([*args, bot_file(tmp_path)])


def test_booleans_from_set():
    bot = Bot()
    apply_settings(bot, dict([parse_assignment("bot_mode=false")]))
    assert bot.bot_mode is False
    apply_settings(bot, {"bot_mode": "yes"})
    assert bot.bot_mode is True
