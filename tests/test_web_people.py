"""The web client's modern IRC in a real browser against the real daemon: MONITOR presence in
private conversations, WHOX away state and bot badges in the member list, SETNAME, metadata
(display names, colours, avatars, the settings panel) and read markers.

The harness (Chromium under Playwright in a thread beside the reactor) is test_web_browser's.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

from helpers import register, wait_until
from playwright.sync_api import expect
from test_web_browser import (  # noqa: F401 - fixtures pytest finds by name
    browser,
    conversation,
    ensure,
    has_unread,
    helper_bot,
    line,
    pytestmark,
    sees,
    sign_in,
    site,
    type_line,
)
from twisted.internet import endpoints, reactor
from twisted.web import resource, server


def _png(size: int = 64, rgb: bytes = b"\x1f\x7a\x4d") -> bytes:
    """A plain square of one colour as a PNG, ``size`` pixels wide."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rgb * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


PNG = _png()


def topic(page: Any) -> Any:
    return page.locator("#topic")


def member(page: Any, nick: str) -> Any:
    return page.locator(f"#members li[data-nick='{nick}']")


@ensure
async def test_a_private_conversation_shows_online_away_and_offline(site, browser):
    """MONITOR: the other person's state in the header and the list, kept up to date."""
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "alice")
    dave = await register(site, "dave")
    await browser.call(type_line, page, "/msg dave are you there?")
    await dave.expect("PRIVMSG", "dave", "are you there?")

    def shows(text: str, presence: str, nick: str = "dave") -> None:
        expect(topic(page)).to_have_text(text)
        expect(conversation(page, nick)).to_have_attribute("data-presence", presence)

    await browser.call(shows, "online", "online")
    assert "dave" in site.factory.core.state.find_user("alice").monitoring
    dave.send("AWAY :at lunch")  # extended-monitor + away-notify tell the page
    await browser.call(shows, "away: at lunch", "away")
    dave.send("AWAY")
    await browser.call(shows, "online", "online")
    dave.send("QUIT :bye")
    await browser.call(shows, "offline", "offline")
    # Someone already away when the conversation opens: WHOX says so (without the reason).
    erin = await register(site, "erin")
    erin.send("AWAY :busy")
    await erin.expect("306")
    await browser.call(type_line, page, "/msg erin hello")
    await browser.call(shows, "away", "away", "erin")
    # Back under the same nick: online again.
    dave = await register(site, "dave")
    await browser.call(lambda: conversation(page, "dave").click())
    await browser.call(shows, "online", "online")
    dave.close()
    erin.close()


@ensure
async def test_members_away_bots_and_setname(site, browser, helper_bot):
    """WHOX on join greys away members; bots get a badge (+B, the bot tag); SETNAME is shown."""
    dave = await register(site, "dave")
    dave.send("JOIN #lobby", "AWAY :gone fishing")
    await dave.expect("306")
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "alice")

    def away_and_bot() -> None:
        expect(member(page, "dave")).to_have_class("away")
        expect(member(page, "dave")).to_have_attribute("title", "away")  # WHOX has no reason
        expect(member(page, "alice")).not_to_have_class("away")
        expect(member(page, "helperbot").locator(".badge")).to_have_text("bot")
        expect(member(page, "dave").locator(".badge")).to_have_count(0)

    await browser.call(away_and_bot)
    await browser.call(type_line, page, "!hello")

    def bot_line() -> None:
        row = line(page, "hello alice, from TCP")
        expect(row.locator(".badge")).to_have_text("bot")
        expect(line(page, "!hello").locator(".badge")).to_have_count(0)

    await browser.call(bot_line)
    dave.send("AWAY")
    await browser.call(lambda: expect(member(page, "dave")).not_to_have_class("away"))
    dave.send("SETNAME :Dave Jones")
    await browser.call(sees, page, "dave set their name to “Dave Jones”")
    await browser.call(lambda: expect(member(page, "dave").locator(".nick"))
                       .to_have_attribute("title", "dave (Dave Jones)"))
    dave.close()


class Avatar(resource.Resource):
    """A PNG, remembering the Referer each request came with."""

    isLeaf = True

    def __init__(self, image: bytes = PNG) -> None:
        super().__init__()
        self.image = image
        self.referers: list[bytes | None] = []

    def render_GET(self, request: Any) -> bytes:
        self.referers.append(request.getHeader(b"referer"))
        request.setHeader(b"content-type", b"image/png")
        return self.image


@ensure
async def test_display_names_colours_and_avatars_from_the_settings_panel(site, browser):
    avatar = Avatar()
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        server.Site(avatar))
    try:
        await _display_names(site, browser, f"http://127.0.0.1:{port.getHost().port}/alice.png",
                             avatar)
    finally:
        await port.stopListening()


async def _display_names(site: Any, browser: Any, picture: str, avatar: Avatar) -> None:
    alice = await browser.page(site.url)
    bob = await browser.page(site.url)
    await browser.call(sign_in, alice, "alice")
    await browser.call(sign_in, bob, "bob")

    def set_mine() -> None:
        alice.click("#open-settings")
        alice.fill("#settings-name", "Alice Liddell")
        alice.fill("#settings-colour", "green")
        alice.click("#settings button[type=submit]")
        expect(alice.locator("#settings-note")).to_contain_text("#rrggbb")
        alice.fill("#settings-colour", "#1f7a4d")
        alice.fill("#settings-avatar", picture)
        alice.click("#settings button[type=submit]")
        expect(alice.locator("#settings")).to_be_hidden()

    await browser.call(set_mine)
    await wait_until(
        lambda: dict(site.factory.core.state.metadata.values(
            site.factory.core.state.find_user("alice").owner)).get("display-name"),
        "alice's display name is set")
    await browser.call(type_line, alice, "call me Alice")

    def bob_sees_the_name() -> None:
        row = line(bob, "call me Alice")
        expect(row.locator(".nick")).to_have_text("Alice Liddell")
        # The nick on hover (and the real name WHOX told).
        expect(row.locator(".nick")).to_have_attribute("title", re.compile(r"^alice( \(|$)"))
        expect(row.locator(".nick")).to_have_css("color", "rgb(31, 122, 77)")
        image = row.locator("img.avatar")
        expect(image).to_have_attribute("src", picture)
        expect(image).to_have_attribute("referrerpolicy", "no-referrer")
        expect(member(bob, "alice").locator(".nick")).to_have_text("Alice Liddell")
        # Loaded, and drawn small whatever its own size (64 px).
        image.evaluate("img => img.complete || new Promise(done => img.onload = done)")
        assert image.evaluate("img => img.naturalWidth") == 64
        box = image.bounding_box()
        assert box["width"] <= 20 and box["height"] <= 20

    await browser.call(bob_sees_the_name)
    assert avatar.referers and set(avatar.referers) == {None}
    # A value that is not an http(s) address is never loaded.
    dave = await register(site, "dave", cap=True)
    dave.send("CAP REQ :draft/metadata-2", "CAP END", "JOIN #lobby",
              "METADATA * SET avatar :javascript:alert(1)",
              "METADATA * SET display-name :Dave D.", "PRIVMSG #lobby :my avatar is odd")
    await browser.call(lambda: expect(line(bob, "my avatar is odd").locator(".nick"))
                       .to_have_text("Dave D."))
    await browser.call(lambda: expect(line(bob, "my avatar is odd").locator("img"))
                       .to_have_count(0))
    # Clearing the display name brings the nick back.
    def clear_mine() -> None:
        alice.click("#open-settings")
        expect(alice.locator("#settings-name")).to_have_value("Alice Liddell")
        alice.fill("#settings-name", "")
        alice.click("#settings button[type=submit]")
        expect(member(bob, "alice").locator(".nick")).to_have_text("alice")

    await browser.call(clear_mine)
    dave.close()


def _marker_between(page: Any, before: str, after: str) -> None:
    """The "last read" line is right between the lines saying ``before`` and ``after``."""
    expect(page.locator("#lines .read-marker")).to_have_count(1)
    around = page.eval_on_selector("#lines .read-marker", """m => [
        m.previousElementSibling.textContent, m.nextElementSibling.textContent]""")
    assert before in around[0] and after in around[1], around


@ensure
async def test_read_markers_place_the_last_read_line(site, browser):
    """The page sends MARKREAD for what it shows; coming back, the line sits at the marker."""
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "alice")
    dave = await register(site, "dave")
    dave.send("JOIN #lobby")
    await dave.expect("366")
    state = site.factory.core.state
    owner = state.find_user("alice").owner

    def marker() -> str | None:
        return state.read_markers.get(owner, "#lobby")

    dave.send("PRIVMSG #lobby :first")
    await browser.call(sees, page, "first")
    seen = await wait_until(marker, "the page marked #lobby read")
    await browser.call(type_line, page, "/join #other")
    await browser.call(lambda: expect(page.locator("#title")).to_have_text("#other"))
    dave.send("PRIVMSG #lobby :second", "PRIVMSG #lobby :third")
    await browser.call(has_unread, page, "#lobby", "2")
    assert marker() == seen  # not read while elsewhere
    await browser.call(lambda: conversation(page, "#lobby").click())
    await browser.call(_marker_between, page, "first", "second")
    await wait_until(lambda: marker() > seen, "reading moved the marker on")
    dave.close()


@ensure
async def test_read_markers_sync_two_pages_of_one_account(site, browser):
    """Read on one page, no longer unread on the other (the server pushes MARKREAD)."""
    core = site.factory.core
    first = await browser.page(site.url)
    second = await browser.page(site.url)
    await browser.call(sign_in, first, "alice", also="#other")
    await browser.call(sign_in, second, "alice2", also="#other")
    for nick in ("alice", "alice2"):  # as SASL will: both connections log in to one account
        core.set_account(core.state.find_user(nick), "alice")
    dave = await register(site, "dave")
    dave.send("JOIN #lobby")
    await dave.expect("366")
    dave.send("PRIVMSG #lobby :news for both")
    await browser.call(has_unread, first, "#lobby", "1")
    await browser.call(has_unread, second, "#lobby", "1")
    await browser.call(lambda: conversation(first, "#lobby").click())
    await browser.call(lambda: expect(conversation(second, "#lobby").locator(".unread"))
                       .to_have_count(0))
    # The first page looks elsewhere; two more lines. The second page had read up to "news for
    # both" (on the first page), so its "last read" line goes there.
    await browser.call(lambda: conversation(first, "#other").click())
    await browser.call(lambda: expect(first.locator("#title")).to_have_text("#other"))
    dave.send("PRIVMSG #lobby :later one", "PRIVMSG #lobby :later two")
    await browser.call(has_unread, first, "#lobby", "2")
    await browser.call(has_unread, second, "#lobby", "2")
    await browser.call(lambda: conversation(second, "#lobby").click())
    await browser.call(_marker_between, second, "news for both", "later one")
    # Read on the second page: the first page's count goes too.
    await browser.call(lambda: expect(conversation(first, "#lobby").locator(".unread"))
                       .to_have_count(0))
    dave.close()


@ensure
async def test_screenshots_of_people(site, browser, helper_bot, tmp_path):
    """One picture of it all: display name, avatar, bot badge, an away member, the "last read"
    line, a private conversation's presence dot (docs/web-people.png with UPDATE_SCREENSHOTS=1)."""
    avatar = Avatar(_png(rgb=b"\xd9\x77\x06"))
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        server.Site(avatar))
    try:
        helper_bot.client.topic("#lobby", "Friday: bring snacks")
        page = await browser.page(site.url)
        await browser.call(sign_in, page, "alice")
        dave = await register(site, "dave", cap=True)
        dave.send("CAP REQ :draft/metadata-2", "CAP END",
                  "METADATA * SET display-name :Dave Jones", "METADATA * SET color :#b54708",
                  f"METADATA * SET avatar :http://127.0.0.1:{port.getHost().port}/dave.png",
                  "JOIN #lobby", "PRIVMSG #lobby :morning all!")
        await browser.call(sees, page, "morning all!")
        erin = await register(site, "erin")
        erin.send("JOIN #lobby", "PRIVMSG #lobby :I'll be back after lunch", "AWAY :lunch")
        await browser.call(sees, page, "back after lunch")
        await browser.call(type_line, page, "/msg dave are the notes up?")
        await browser.call(lambda: expect(topic(page)).to_have_text("online"))
        dave.send("PRIVMSG #lobby :the notes are up: https://example.org/notes")
        await browser.call(has_unread, page, "#lobby", "1")
        await browser.call(type_line, page, "/join #lobby")  # back: the "last read" line shows
        await browser.call(sees, page, "the notes are up")
        await browser.call(type_line, page, "!hello")
        await browser.call(sees, page, "hello alice, from TCP")
        await browser.call(lambda: expect(member(page, "erin")).to_have_class("away"))
        await browser.call(lambda: expect(page.locator("#lines .read-marker")).to_have_count(1))
        await browser.call(page.evaluate, "() => Promise.all([...document.images].map("
                           "img => img.complete || new Promise(done => img.onload = done)))")
        path = tmp_path / "web-people.png"
        await browser.call(page.screenshot, path=str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("UPDATE_SCREENSHOTS"):
            shutil.copy(path, Path(__file__).resolve().parent.parent / "docs" / "web-people.png")
        dave.close()
        erin.close()
    finally:
        await port.stopListening()


@ensure
async def test_an_account_login_where_the_server_has_none(site, browser):
    """The sign-in form's account login needs SASL: without it the page says so and stops."""
    page = await browser.page(site.url)

    def no_sasl() -> None:
        page.fill("#login-nick", "alice")
        page.click("#login-with-account summary")
        page.fill("#login-account", "alice")
        page.fill("#login-account-password", "secret")
        page.click("#login button")
        expect(page.locator("#login-error")).to_have_text(
            "This server has no account login (no SASL).")
        expect(page.locator("#login")).to_be_visible()

    await browser.call(no_sasl)
    await wait_until(lambda: site.factory.core.state.find_user("alice") is None,
                     "the page's connection is gone")
