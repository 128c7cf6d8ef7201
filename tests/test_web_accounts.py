"""Account login from the web page (SASL PLAIN on the sign-in form) against the whole daemon with
a store, and read markers kept in step between two pages logged in to one account.

It needs the daemon's AUTHENTICATE and ``--db`` (the accounts work): until those are merged the
test is skipped; it passed against the accounts branch merged in (2026-11-30).
"""

from __future__ import annotations

from typing import Any

from helpers import connect, wait_until
from playwright.sync_api import expect
from test_web_browser import (  # noqa: F401 - fixtures pytest finds by name
    browser,
    conversation,
    ensure,
    has_unread,
    pytestmark,
    sees,
    type_line,
)

import twistedchat.server.commands  # noqa: F401 - fills the command table
from twistedchat.server.config import ServerConfig
from twistedchat.server.service import ChatService

PASSWORD = "correct-horse-battery"


async def _daemon(tmp_path: Any) -> ChatService:
    from twisted.internet import reactor

    config = ServerConfig(name="web.server", db=f"sqlite:{tmp_path / 'chat.sqlite3'}",
                          ports=["tcp:0:interface=127.0.0.1"], web=["tcp:0:interface=127.0.0.1"])
    daemon = ChatService(config, reactor=reactor)
    daemon.privilegedStartService()
    daemon.startService()
    await wait_until(lambda: daemon.store is not None, "the store to open")
    return daemon


async def _register_account(daemon: ChatService, account: str) -> None:
    """Create ``account`` the way an IRC client does (REGISTER), then leave."""
    port = daemon.ports[0].getHost().port
    client = await connect(f"tcp:127.0.0.1:{port}")
    client.send("CAP LS 302", "CAP REQ :sasl", f"NICK {account}", f"USER {account} 0 * :x",
                f"REGISTER * * :{PASSWORD}")
    await client.expect("REGISTER", "SUCCESS", account)
    client.send("QUIT")
    await client.wait_closed()


def log_in(page: Any, nick: str, account: str, password: str) -> None:
    page.fill("#login-nick", nick)
    page.click("#login-with-account summary")
    page.fill("#login-account", account)
    page.fill("#login-account-password", password)
    page.click("#login button")


@ensure
async def test_log_in_with_sasl_and_markers_follow_the_account(browser, tmp_path):
    daemon = await _daemon(tmp_path)
    try:
        await _register_account(daemon, "alice")
        url = f"http://127.0.0.1:{daemon.ports[1].getHost().port}/"
        first = await browser.page(url)
        second = await browser.page(url)
        wrong = await browser.page(url)

        def refused() -> None:
            log_in(wrong, "mallory", "alice", "guess")
            expect(wrong.locator("#login-error")).to_contain_text("The server refused the login")
            expect(wrong.locator("#login")).to_be_visible()

        await browser.call(refused)
        for page, nick in ((first, "alice"), (second, "alice_phone")):
            await browser.call(log_in, page, nick, "alice", PASSWORD)
            await browser.call(lambda page=page, nick=nick: expect(page.locator("#status"))
                               .to_have_text(nick))
        state = daemon.factory.core.state
        assert state.find_user("alice").account == state.find_user("alice_phone").account
        assert state.find_user("mallory") is None
        # Both pages look at another channel; a line comes to #lobby; one page reads it.
        for page in (first, second):
            await browser.call(type_line, page, "/join #other")
        port = daemon.ports[0].getHost().port
        dave = await connect(f"tcp:127.0.0.1:{port}")
        dave.send("NICK dave", "USER dave 0 * :Dave", "JOIN #lobby", "PRIVMSG #lobby :news")
        await browser.call(has_unread, first, "#lobby", "1")
        await browser.call(has_unread, second, "#lobby", "1")
        await browser.call(lambda: conversation(first, "#lobby").click())
        await browser.call(sees, first, "news")
        await browser.call(lambda: expect(conversation(second, "#lobby").locator(".unread"))
                           .to_have_count(0))
        # The marker outlives the page: after a reload (logged in again, history on joining) the
        # "last read" line is right after what was read.
        await browser.call(lambda: conversation(first, "#other").click())
        await browser.call(lambda: expect(first.locator("#title")).to_have_text("#other"))
        dave.send("PRIVMSG #lobby :while you were away")
        await browser.call(has_unread, first, "#lobby", "1")
        await browser.call(first.reload)

        def marker_after_reload() -> None:
            expect(first.locator("#status")).to_have_text("alice")
            expect(first.locator("#title")).to_have_text("#lobby")
            sees(first, "while you were away")
            expect(first.locator("#lines .read-marker")).to_have_count(1)
            around = first.eval_on_selector("#lines .read-marker", """m => [
                m.previousElementSibling.textContent, m.nextElementSibling.textContent]""")
            assert "news" in around[0] and "while you were away" in around[1], around

        await browser.call(marker_after_reload)
        dave.send("QUIT")
        await dave.wait_closed()
    finally:
        await daemon.stopService()
