"""The ``twistd chatbot`` plugin: listed by twistd, strict about options, runs an example bot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from helpers import checkout_env, register, twistd_command, wait_until

from twistedchat.bot.tap import BotFileError, load_bot

ROOT = Path(__file__).resolve().parent.parent
DICEBOT = str(ROOT / "examples" / "dicebot.py")


def run_twistd(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*twistd_command(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_twistd_help_lists_chatbot(tmp_path):
    result = run_twistd(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert any(line.split()[:1] == ["chatbot"] for line in result.stdout.splitlines())


def test_chatbot_help_lists_the_options(tmp_path):
    result = run_twistd(["chatbot", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--server", "--nick", "--channel", "--password", "BOTFILE.py"):
        assert option in result.stdout, option


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("args", "expected"), [
    ([], "give the Python file"),
    (["--server", "nonsense:x", DICEBOT], "--server"),
    (["--nick", "bad nick", DICEBOT], "--nick"),
    (["--channel", "lobby", DICEBOT], "--channel"),
    (["/nonexistent/bot.py"], "not a Python file"),
    (["--bogus", DICEBOT], "bogus"),
    ("syntax", "SyntaxError"),
    ("nobot", "exactly one Bot subclass"),
    ("notabot", "'bot' must be"),
])
def test_bad_options_and_files_are_usage_errors(tmp_path, args, expected):
    if args == "syntax":
        args = [write(tmp_path / "broken.py", "class Oops(:\n")]
    elif args == "nobot":
        args = [write(tmp_path / "empty.py", "x = 1\n")]
    elif args == "notabot":
        args = [write(tmp_path / "wrong.py", "bot = 42\n")]
    result = run_twistd(["-n", "chatbot", *args], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output
    assert "Traceback" not in output, output


def test_load_bot_accepts_a_named_instance(tmp_path):
    path = write(tmp_path / "named.py", "from twistedchat.bot import Bot\n"
                 "class A(Bot): pass\nclass B(Bot): nickname = 'bee'\nbot = B()\n")
    assert load_bot(path).nickname == "bee"
    with pytest.raises(BotFileError, match="found 2"):
        load_bot(write(tmp_path / "two.py", "from twistedchat.bot import Bot\n"
                       "class A(Bot): pass\nclass B(Bot): pass\n"))


@pytest_twisted.ensureDeferred
async def test_twistd_chatbot_runs_the_dice_bot(chat_server, tmp_path):
    alice = await register(chat_server, "alice")
    alice.send("JOIN #lobby")
    await alice.expect("366")
    command = [*twistd_command(), "-n", "--pidfile=", f"--logfile={tmp_path / 'bot.log'}",
               "chatbot", "--server", chat_server.client_endpoint, "--nick", "roller",
               "--channel", "#lobby", DICEBOT]
    process = subprocess.Popen(command, cwd=tmp_path, env=checkout_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await alice.expect("JOIN", "#lobby", source="roller!", timeout=20)
        alice.send("PRIVMSG #lobby :!roll 3d4")
        message = await alice.expect("PRIVMSG", "#lobby", source="roller!")
        assert message.params[1].startswith("alice rolled ")
    finally:
        alice.close()
        process.terminate()
        await wait_until(lambda: process.poll() is not None, "twistd exits", timeout=10)


@pytest_twisted.ensureDeferred
async def test_python_runs_the_dice_bot_file_directly(chat_server, tmp_path):
    alice = await register(chat_server, "alice")
    alice.send("JOIN #lobby")
    await alice.expect("366")
    process = subprocess.Popen([sys.executable, DICEBOT, chat_server.client_endpoint],
                               cwd=tmp_path, env=checkout_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await alice.expect("JOIN", "#lobby", source="dicebot!", timeout=20)
        alice.send("PRIVMSG dicebot :roll 1d20")
        message = await alice.expect("PRIVMSG", "alice", source="dicebot!")
        assert message.params[1].startswith("alice rolled ")
    finally:
        alice.close()
        process.terminate()
        await wait_until(lambda: process.poll() is not None, "the bot exits", timeout=10)


@pytest_twisted.ensureDeferred
async def test_sigterm_makes_the_bot_say_quit_with_its_configured_message(chat_server, tmp_path):
    alice = await register(chat_server, "alice")
    alice.send("JOIN #lobby")
    await alice.expect("366")
    config = tmp_path / "bot.toml"
    config.write_text(f'server = "{chat_server.client_endpoint}"\nquit_message = "off to bed"\n'
                      'channels = ["#lobby"]\n')
    command = [*twistd_command(), "-n", "--pidfile=", f"--logfile={tmp_path / 'bot.log'}",
               "chatbot", "--config", str(config), "--set", "nickname=sleeper", DICEBOT]
    process = subprocess.Popen(command, cwd=tmp_path, env=checkout_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await alice.expect("JOIN", "#lobby", source="sleeper!", timeout=20)
        process.terminate()
        message = await alice.expect("QUIT", source="sleeper!", timeout=20)
        assert message.params[0] == "Quit: off to bed"
    finally:
        alice.close()
        if process.poll() is None:
            process.terminate()
        await wait_until(lambda: process.poll() is not None, "twistd exits", timeout=10)
    log = (tmp_path / "bot.log").read_text()
    assert "[DiceBot#info] signed on as sleeper" in log, log
