"""Other clients with accounts and history on the real daemon: Twisted's IRCClient identifies with
NickServ, the ``irc`` package from PyPI reads CHATHISTORY, a twistedchat bot logs in with SASL."""

from __future__ import annotations

import pytest_twisted
from test_accounts_daemon import PASSWORD, Daemon, connect
from test_interop_irc_pypi import PypiClient
from test_interop_twisted import RecordingClient
from twisted.internet import endpoints, reactor

from twistedchat.bot import Bot
from twistedchat.bot.testing import BotRunner, wait_until

ensure = pytest_twisted.ensureDeferred


class NamedDaemon(Daemon):
    """The daemon with the ``host`` and ``port`` the PyPI client's helper wants."""

    host = "127.0.0.1"

    @property
    def port(self) -> int:
        assert self.service is not None
        return self.service.ports[0].getHost().port


async def _account(daemon: Daemon, nick: str) -> None:
    """Register ``nick`` as an account (then leave)."""
    user = await connect(daemon, nick)
    user.send(f"REGISTER * * {PASSWORD}")
    await user.expect("REGISTER", "SUCCESS")
    user.send("QUIT")
    await wait_until(lambda: user.closed, "the account's creator to leave")


@ensure
async def test_ircclient_identifies_with_nickserv(tmp_path):
    daemon = NamedDaemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    client = None
    try:
        await _account(daemon, "twisty")
        client = RecordingClient("twisty")
        endpoint = endpoints.clientFromString(reactor, daemon.client_endpoint)
        await endpoints.connectProtocol(endpoint, client)
        await client.log.expect("signedOn")
        client.msg("NickServ", f"IDENTIFY {PASSWORD}")
        await client.log.expect("noticed", "NickServ", "twisty", "You are now identified as twisty.")
        observer = await connect(daemon, "observer")
        observer.send("WHOIS twisty")
        whois = await observer.expect("330", None, "twisty")
        assert whois.params[2] == "twisty"
    finally:
        if client is not None and client.transport is not None:
            client.transport.loseConnection()
        await daemon.stop()


@ensure
async def test_irc_package_reads_history_with_chathistory(tmp_path):
    daemon = NamedDaemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    reader = None
    try:
        talker = await connect(daemon, "talker")
        talker.send("JOIN #hist", "PRIVMSG #hist :first line", "PRIVMSG #hist :second line",
                    "PING done")
        await talker.expect("PONG")
        reader = PypiClient(daemon, "reader")
        await reader.log.expect("welcome")
        reader.connection.send_raw("CAP REQ :batch message-tags server-time")
        reader.connection.send_raw("CHATHISTORY LATEST #hist * 10")
        await reader.log.expect("pubmsg", "talker", "#hist", ("first line",))
        await reader.log.expect("pubmsg", "talker", "#hist", ("second line",))
    finally:
        if reader is not None:
            reader.stop()
        await daemon.stop()


class GuardBot(Bot):
    """A bot that owns its nick through SASL."""

    nickname = "guardbot"
    channels = ("#watch",)
    sasl_password = PASSWORD


@ensure
async def test_bot_logs_in_with_sasl_password(tmp_path):
    daemon = NamedDaemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    runner = BotRunner(daemon)
    try:
        await _account(daemon, "guardbot")
        bot = GuardBot()
        bot.database = str(tmp_path / "bot.sqlite3")
        await runner(bot)
        observer = await connect(daemon, "observer")
        observer.send("WHOIS guardbot")
        whois = await observer.expect("330", None, "guardbot")
        assert whois.params[2] == "guardbot"
    finally:
        await runner.stop()
        await daemon.stop()


@ensure
async def test_weechat_logs_in_with_sasl(tmp_path):
    """WeeChat, set up for SASL PLAIN in tmux, is logged in to its account when it joins."""
    from helpers import DaemonProcess
    from test_interop_terminal import Tmux, expect_showing, need

    need("tmux")
    need("weechat")
    daemon = DaemonProcess(tmp_path, "--db", "memory:")
    tmux = Tmux(tmp_path)
    try:
        await daemon.wait_listening()
        await _account(daemon, "weeuser")
        python = await connect(daemon, "pywatch")
        python.send("JOIN #lobby")
        await python.expect("366")
        home = tmp_path / "weechat-home"
        home.mkdir()
        commands = ";".join([
            f"/server add test 127.0.0.1/{daemon.port}",
            "/set irc.server.test.ssl off",
            "/set irc.server.test.tls off",
            "/set irc.server.test.nicks weeuser",
            "/set irc.server.test.sasl_mechanism plain",
            "/set irc.server.test.sasl_username weeuser",
            f"/set irc.server.test.sasl_password {PASSWORD}",
            "/set irc.server.test.autojoin #lobby",
            "/connect test",
        ])
        await tmux.start("weechat", f"weechat --dir {home} -r '{commands}'")
        await expect_showing(python, tmux, "weechat", "JOIN", "#lobby", source="weeuser!")
        python.send("WHOIS weeuser")
        whois = await expect_showing(python, tmux, "weechat", "330", None, "weeuser")
        assert whois.params[2] == "weeuser"  # logged in by SASL before it joined
    finally:
        await tmux.kill()
        await daemon.terminate()
