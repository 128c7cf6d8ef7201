"""The web client in a real browser: Debian's chromium driven by Playwright, against the real daemon.

The daemon (TCP and its web site) runs on this process's reactor; Playwright's synchronous API
runs in a thread of its own (:class:`Browser`), so the reactor keeps serving while the browser
waits. Every wait is one of Playwright's DOM waits or :func:`helpers.wait_until`, bounded; nothing
sleeps. ``UPDATE_SCREENSHOTS=1`` (``make web-screenshots``) also copies the theme screenshots to docs/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from helpers import register, wait_until
from twisted.internet import defer, endpoints, reactor
from twisted.python.threadpool import ThreadPool
from websocket_peers import WebServer

from twistedchat.bot import Bot, command, make_service
from twistedchat.server.config import ServerConfig

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Milliseconds any one browser wait may take.
WAIT = 10_000
REPO = Path(__file__).resolve().parent.parent

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

pytestmark = pytest.mark.skipif(
    sync_playwright is None or not os.path.exists(CHROMIUM),
    reason="needs pip's playwright and Debian's chromium (make system-deps installs it)",
)
ensure = pytest_twisted.ensureDeferred


class Browser:
    """Chromium under Playwright's sync API, every call made in the one thread that owns it."""

    def __init__(self) -> None:
        self.pool = ThreadPool(1, 1, "browser")
        self.playwright: Any = None
        self.chromium: Any = None
        self.pages: list[Any] = []

    def call(self, function: Any, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        """Run ``function`` in the browser's thread; a Deferred of its result."""
        result: defer.Deferred[Any] = defer.Deferred()

        def deliver(ok: bool, value: Any) -> None:
            # Under pytest-twisted's greenlets the Qt reactor can re-enter runUntilCurrent and
            # run one callFromThread twice; the second delivery is ignored.
            if not result.called:
                (result.callback if ok else result.errback)(value)

        self.pool.callInThreadWithCallback(
            lambda ok, value: reactor.callFromThread(deliver, ok, value), function, *args, **kwargs)
        return result

    async def start(self) -> None:
        self.pool.start()
        await self.call(self._start)

    def _start(self) -> None:
        self.playwright = sync_playwright().start()
        # Playwright gives every launch a fresh temporary profile (user-data-dir) of its own.
        self.chromium = self.playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)

    async def page(self, url: str, *, dark: bool = False, width: int = 1100, height: int = 650) -> Any:
        """A page in a context of its own (its own localStorage), opened at ``url``."""
        def open_page() -> Any:
            context = self.chromium.new_context(
                viewport={"width": width, "height": height},
                color_scheme="dark" if dark else "light",
            )
            page = context.new_page()
            page.set_default_timeout(WAIT)
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.goto(url)
            self.pages.append(page)
            return page

        return await self.call(open_page)

    async def stop(self) -> None:
        def close() -> None:
            if self.chromium is not None:
                self.chromium.close()
            if self.playwright is not None:
                self.playwright.stop()

        try:
            await self.call(close)
        finally:
            self.pool.stop()


@pytest_twisted.async_yield_fixture
async def browser():
    chromium = Browser()
    await chromium.start()
    yield chromium
    await chromium.stop()
    errors = [error for page in chromium.pages for error in page.errors]
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest_twisted.async_yield_fixture
async def site(request):
    server = WebServer(ServerConfig(name="web.server", **getattr(request, "param", {})))
    await server.start()
    server.url = f"http://127.0.0.1:{server.web_port}/"
    yield server
    await server.stop()


# -- what a person does on the page (run in the browser's thread) ---------------------------------


def sign_in(page: Any, nick: str, channel: str = "#lobby", also: str | None = None) -> None:
    """Sign in to ``channel``; then /join ``also`` if given."""
    page.fill("#login-nick", nick)
    page.fill("#login-channel", channel)
    page.click("#login button")
    expect(page.locator("#status")).to_have_text(nick)
    expect(page.locator("#members li", has_text=nick)).to_have_count(1)
    if also:
        type_line(page, f"/join {also}")
        expect(conversation(page, also)).to_have_count(1)
        expect(page.locator("#members li", has_text=nick)).to_have_count(1)


def type_line(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def line(page: Any, text: str) -> Any:
    return page.locator("#lines .line", has_text=text)


def sees(page: Any, text: str, count: int = 1) -> None:
    expect(line(page, text)).to_have_count(count)


def conversation(page: Any, name: str) -> Any:
    return page.locator(f"#conversations li[data-name='{name}']")


def has_unread(page: Any, name: str, count: str) -> None:
    expect(conversation(page, name).locator(".unread")).to_have_text(count)


class Helper(Bot):
    """A bot over plain TCP, built on the project's IRCClient-based bot layer."""

    nickname = "helperbot"
    channels = ("#lobby",)

    @command("hello")
    def hello(self, event: Any) -> str:
        return f"hello {event.nick}, from TCP"


# -- the tests --------------------------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def helper_bot(site):
    """:class:`Helper` connected over TCP and in #lobby."""
    bot = Helper()
    service = make_service(bot, site.client_endpoint, reactor=reactor, initial_delay=0.1)
    service.startService()
    await wait_until(lambda: bot.joined_channels, "the bot joined #lobby")
    yield bot
    await service.stopService()


#: What the browser does when the tab goes out of view, and back.
HIDE_PAGE = """() => {
  window.realFrame = window.realFrame || window.requestAnimationFrame;
  window.requestAnimationFrame = () => 0;  // a tab out of view gets no animation frames
  Object.defineProperty(document, "hidden", { value: true, configurable: true });
  Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW_PAGE = """() => {
  window.requestAnimationFrame = window.realFrame;
  Object.defineProperty(document, "hidden", { value: false, configurable: true });
  Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@ensure
async def test_two_pages_and_a_bot_talk(site, browser, helper_bot):
    alice = await browser.page(site.url)
    bob = await browser.page(site.url)
    await browser.call(sign_in, alice, "alice")
    await browser.call(sign_in, bob, "bob")

    def alice_sees_everyone() -> None:
        for nick in ("alice", "bob", "helperbot"):
            expect(alice.locator("#members li", has_text=nick)).to_have_count(1)
        expect(alice.locator("#member-count")).to_have_text("3 here")

    await browser.call(alice_sees_everyone)
    await browser.call(type_line, alice, "hi bob, how are you?")
    await browser.call(sees, bob, "hi bob, how are you?")
    # The line carries a time and the sender's coloured nick.
    def stamped() -> None:
        row = line(bob, "hi bob, how are you?")
        expect(row.locator("time")).to_have_text(_clock_pattern())
        expect(row.locator(".nick")).to_have_text("alice")
        hue = row.locator(".nick").evaluate("n => n.style.getPropertyValue('--hue')")
        assert hue.strip().isdigit()

    await browser.call(stamped)
    await browser.call(type_line, bob, "!hello")
    await browser.call(sees, alice, "hello bob, from TCP")
    await browser.call(sees, bob, "hello bob, from TCP")
    await browser.call(type_line, alice, "/me waves")
    await browser.call(lambda: expect(bob.locator("#lines .line.action", has_text="waves"))
                       .to_have_count(1))

    # A private message opens a conversation with an unread count on the other page.
    await browser.call(type_line, bob, "/msg alice psst, a secret")

    def unread_private() -> None:
        expect(conversation(alice, "bob").locator(".unread")).to_have_text("1")
        conversation(alice, "bob").click()
        sees(alice, "psst, a secret")
        expect(conversation(alice, "bob").locator(".unread")).to_have_count(0)
        type_line(alice, "got it")
        sees(bob, "got it")

    await browser.call(unread_private)
    # /join a new channel (bob is its operator), /topic it; alice joins and sees the topic.
    await browser.call(type_line, bob, "/join #second")
    await browser.call(lambda: expect(bob.locator("#title")).to_have_text("#second"))
    await browser.call(type_line, bob, "/topic Plans for Friday")
    await browser.call(sees, bob, "bob set the topic: Plans for Friday")
    await browser.call(type_line, alice, "/join #second")
    await browser.call(lambda: expect(alice.locator("#topic")).to_have_text("Plans for Friday"))
    # The other page's lobby count goes up while it looks elsewhere.
    await browser.call(lambda: conversation(alice, "#lobby").click())
    await browser.call(type_line, alice, "anyone still here?")
    await browser.call(lambda: expect(conversation(bob, "#lobby").locator(".unread"))
                       .to_have_text("1"))
    # /nick and /part show up on the other side.
    await browser.call(type_line, bob, "/nick bobby")
    await browser.call(lambda: expect(alice.locator("#members li", has_text="bobby"))
                       .to_have_count(1))
    # Alice's private conversation with bob follows the new nick.
    await browser.call(lambda: expect(conversation(alice, "bobby")).to_have_count(1))
    await browser.call(lambda: expect(conversation(alice, "bob")).to_have_count(0))
    await browser.call(lambda: conversation(bob, "#lobby").click())
    await browser.call(type_line, bob, "/part #lobby see you")
    await browser.call(sees, alice, "bobby left (see you)")
    await browser.call(lambda: expect(alice.locator("#member-count")).to_have_text("2 here"))
    # A tab out of view counts even its current conversation as unread (and says so in its title).
    await browser.call(alice.evaluate, HIDE_PAGE)
    helper_bot.say("#lobby", "anyone there?")

    def unread_while_hidden() -> None:
        expect(conversation(alice, "#lobby").locator(".unread")).to_have_text("1")
        expect(alice).to_have_title("(1) twistedchat")
        alice.evaluate(SHOW_PAGE)
        expect(conversation(alice, "#lobby").locator(".unread")).to_have_count(0)
        expect(alice).to_have_title("twistedchat")

    await browser.call(unread_while_hidden)


def _clock_pattern() -> Any:
    import re

    return re.compile(r"^\d{1,2}:\d{2}")


@ensure
async def test_restart_makes_the_page_reconnect_and_rejoin(site, browser):
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "carol", also="#second")
    state = site.factory.core.state

    def on_both() -> bool:
        user = state.find_user("carol")
        channels = [state.find_channel(name) for name in ("#lobby", "#second")]
        return user is not None and all(c is not None and user in c.members for c in channels)

    await wait_until(on_both, "carol is on both channels")
    await site.stop()
    await browser.call(sees, page, "Server restarting")
    await site.start()
    await wait_until(on_both, "carol is back on both channels", timeout=15)
    await browser.call(lambda: expect(page.locator("#status")).to_have_text("carol"))
    # It works again: a TCP user hears the page.
    dave = await register(site, "dave")
    dave.send("JOIN #second")
    await dave.expect("366")
    await browser.call(lambda: conversation(page, "#second").click())
    await browser.call(type_line, page, "back again")
    await dave.expect("PRIVMSG", "#second", "back again", source="carol!")
    dave.close()


@ensure
async def test_reading_back_is_not_interrupted_by_new_lines(site, browser):
    page = await browser.page(site.url, height=320)
    await browser.call(sign_in, page, "jack")
    dave = await register(site, "dave")
    dave.send("JOIN #lobby")
    await dave.expect("366")
    dave.send(*(f"PRIVMSG #lobby :line {n}" for n in range(20)))
    await browser.call(sees, page, "line 19")
    at_bottom = "(box => box.scrollHeight - box.scrollTop - box.clientHeight < 40)"

    def scrolled(position: str) -> None:
        page.eval_on_selector("#lines", f"box => {{ box.scrollTop = {position}; }}")

    await browser.call(scrolled, "0")  # reading back
    dave.send("PRIVMSG #lobby :while you read")
    await browser.call(sees, page, "while you read")
    assert await browser.call(page.eval_on_selector, "#lines", "box => box.scrollTop") == 0
    await browser.call(scrolled, "box.scrollHeight")  # back at the bottom: follow again
    dave.send("PRIVMSG #lobby :and now")
    await browser.call(sees, page, "and now")
    assert await browser.call(page.eval_on_selector, "#lines", at_bottom) is True
    dave.close()


#: Lines straight onto the page's socket, past its pacing.
FLOOD_FROM_THE_CONSOLE = """() => {
  for (let n = 0; n < 60; n += 1) window.twistedchat.sendRaw(`PRIVMSG #lobby :flood ${n}`);
}"""


@ensure
async def test_a_paste_is_paced_under_the_flood_limit(site, browser):
    """16 lines pasted at once all arrive, in order, one message each; nobody is dropped."""
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "ivy")
    reader = await register(site, "reader")
    reader.send("JOIN #lobby")
    await reader.expect("366")
    paste = "\n".join(f"pasted line {n}" for n in range(16))

    def paste_it() -> None:
        type_line(page, paste)
        # More than the first burst: the rest waits its turn, and the page says so.
        expect(page.locator("#pending")).to_contain_text("waiting to go out")
        sees(page, "pasted line 15")
        expect(page.locator("#pending")).to_have_text("")

    await browser.call(paste_it)
    await reader.expect("PRIVMSG", "#lobby", "pasted line 15", source="ivy!")
    got = [m.params[1] for m in reader.messages if m.command == "PRIVMSG"]
    assert got == [f"pasted line {n}" for n in range(16)]
    assert site.factory.core.state.find_user("ivy") is not None
    reader.close()


@pytest.mark.parametrize("site", [{"flood_burst": 5, "flood_rate": 1, "flood_queue": 20}],
                         indirect=True)
@ensure
async def test_long_line_and_flood_get_their_errors(site, browser):
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "erin")
    await browser.call(type_line, page, "x" * 600)
    await browser.call(sees, page, "417: Input line was too long")
    # The page paces what it says; a script in the page that floods anyway is dropped, and the
    # page says why.
    await browser.call(page.evaluate, FLOOD_FROM_THE_CONSOLE)
    await browser.call(lambda: expect(line(page, "Excess Flood").first).to_be_visible())
    # The page comes back by itself.
    await wait_until(lambda: site.factory.core.state.find_user("erin") is not None,
                     "erin reconnected", timeout=15)
    await browser.call(lambda: expect(page.locator("#status")).to_have_text("erin"))


@ensure
async def test_reload_signs_in_again_with_the_same_nick_and_channels(site, browser):
    page = await browser.page(site.url)
    await browser.call(sign_in, page, "frank", also="#other")
    await browser.call(page.reload)

    def back() -> None:
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#status")).to_have_text("frank")
        expect(conversation(page, "#lobby")).to_have_count(1)
        expect(conversation(page, "#other")).to_have_count(1)

    await browser.call(back)
    await wait_until(lambda: site.factory.core.state.find_user("frank") is not None, "frank is back")
    # /quit leaves for good: no reconnect, and the next visit asks for a nick.
    await browser.call(type_line, page, "/quit bye")
    await browser.call(lambda: expect(page.locator("#status")).to_have_text("offline"))
    await wait_until(lambda: site.factory.core.state.find_user("frank") is None, "frank left")
    await browser.call(page.reload)
    await browser.call(lambda: expect(page.locator("#login")).to_be_visible())


@pytest.mark.parametrize("site", [{"password": "sesame"}], indirect=True)
@ensure
async def test_server_password(site, browser):
    page = await browser.page(site.url)

    def wrong_then_right() -> None:
        page.fill("#login-nick", "henry")
        page.fill("#login-password", "guess")
        page.click("#login button")
        # Refused: back at the form, told why, and not retrying in a loop.
        expect(page.locator("#login-error")).to_have_text(
            "The server refused the password: Password incorrect")
        expect(page.locator("#login-nick")).to_have_value("henry")
        page.fill("#login-password", "sesame")
        page.click("#login button")
        expect(page.locator("#status")).to_have_text("henry")
        page.reload()  # the tab keeps its password
        expect(page.locator("#status")).to_have_text("henry")

    await browser.call(wrong_then_right)
    assert site.factory.core.state.find_user("henry") is not None


@ensure
async def test_screenshots_of_both_themes_and_a_phone(site, browser, helper_bot, tmp_path):
    """Light and dark follow the browser's preference; a phone-sized screen hides the side lists."""
    shots = {}
    helper_bot.client.topic("#lobby", "Friday: bring snacks, see https://example.org")
    dave = await register(site, "dave")  # someone on an IRC client
    dave.send("JOIN #lobby")
    await dave.expect("366")
    for name, dark, width, height in (("web-light", False, 1100, 650),
                                      ("web-dark", True, 1100, 650),
                                      ("web-phone", True, 390, 740)):
        page = await browser.page(site.url, dark=dark, width=width, height=height)
        nick = name.replace("web-", "")
        await browser.call(sign_in, page, nick) if width > 720 else await browser.call(
            _sign_in_on_phone, page, nick)
        dave.send(f"PRIVMSG #lobby :morning {nick}! the notes are at https://example.org/notes")
        await browser.call(sees, page, f"morning {nick}!")
        await browser.call(type_line, page, f"hi dave, I'm on the {nick} screen")
        await browser.call(type_line, page, "!hello")
        await browser.call(sees, page, f"hello {nick}, from TCP")
        if width > 720:
            await browser.call(type_line, page, "/me waves")
            dave.send(f"PRIVMSG {nick} :lunch at noon?")
            await browser.call(has_unread, page, "dave", "1")
        path = tmp_path / f"{name}.png"
        await browser.call(page.screenshot, path=str(path))
        background = await browser.call(
            page.evaluate, "getComputedStyle(document.body).backgroundColor")
        shots[name] = (path, background)
    light, dark = shots["web-light"][1], shots["web-dark"][1]
    assert light == "rgb(255, 255, 255)" and dark == "rgb(22, 24, 29)"
    for path, _ in shots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_SCREENSHOTS"):
        for name, (path, _) in shots.items():
            shutil.copy(path, REPO / "docs" / f"{name}.png")
    dave.close()


def _sign_in_on_phone(page: Any, nick: str) -> None:
    page.fill("#login-nick", nick)
    page.click("#login button")
    # The lists are drawers on a phone: closed at first, the toggle opens the members.
    expect(page.locator(".members-pane")).to_be_hidden()
    expect(page.locator("#toggle-members")).to_be_visible()
    page.click("#toggle-members")
    expect(page.locator("#members li", has_text=nick)).to_have_count(1)
    page.click("#toggle-members")
    expect(page.locator(".members-pane")).to_be_hidden()


# -- CHATHISTORY, against a stand-in server (the daemon does not offer draft/chathistory yet) --------


class HistoryServer(WebSocketServerProtocol):
    """Just enough IRC over WebSocket to offer draft/chathistory and answer CHATHISTORY LATEST."""

    history = [
        ("m1", "2026-01-01T10:00:00.000Z", "older", "from yesterday"),
        ("m2", "2026-01-01T10:00:01.000Z", "older", "the last line before you came"),
    ]

    def onConnect(self, request: Any) -> str:
        return "text.ircv3.net"

    def onOpen(self) -> None:
        self.nick = "*"
        self.factory.connections.append(self)

    def say(self, line: str) -> None:
        self.sendMessage(line.encode(), isBinary=False)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        line = payload.decode()
        self.factory.received.append(line)
        words = line.split(" ")
        if line == "CAP LS 302":
            self.say(":fake CAP * LS :batch server-time message-tags draft/chathistory")
        elif words[:2] == ["CAP", "REQ"]:
            self.say(f":fake CAP * ACK {' '.join(words[2:])}")
        elif words[0] == "NICK":
            self.nick = words[1]
        elif line == "CAP END":
            self.say(f":fake 001 {self.nick} :Welcome")
            self.say(f":fake 005 {self.nick} CHATHISTORY=50 CHANTYPES=# :are supported")
            self.say(f":fake 422 {self.nick} :No MOTD")
        elif words[0] == "JOIN":
            self.say(f":{self.nick}!u@h JOIN {words[1]}")
            self.say(f":fake 353 {self.nick} = {words[1]} :{self.nick} older")
            self.say(f":fake 366 {self.nick} {words[1]} :End of /NAMES list.")
        elif words[:2] == ["CHATHISTORY", "LATEST"]:
            self.say(f":fake BATCH +h1 chathistory {words[2]}")
            for msgid, time, nick, text in self.history:
                self.say(f"@batch=h1;time={time};msgid={msgid} :{nick}!o@h PRIVMSG {words[2]} :{text}")
            self.say(":fake BATCH -h1")

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if self in self.factory.connections:
            self.factory.connections.remove(self)


@ensure
async def test_history_on_join_after_a_reconnect_and_on_reload(site, browser):
    factory = WebSocketServerFactory()
    factory.protocol = HistoryServer
    factory.received = []
    factory.connections = []
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    saved = HistoryServer.history
    try:
        url = f"{site.url}?ws=ws://127.0.0.1:{port.getHost().port}/"
        page = await browser.page(url)
        await browser.call(sign_in, page, "grace")

        def history_shown() -> None:
            expect(page.locator("#lines .line.history")).to_have_count(2)
            sees(page, "from yesterday")
            sees(page, "the last line before you came")
            # History is already read: no unread count for it.
            expect(conversation(page, "#lobby").locator(".unread")).to_have_count(0)

        await browser.call(history_shown)
        assert "CHATHISTORY LATEST #lobby * 50" in factory.received
        # After a reconnect the page asks only for what came after its newest line, and a line it
        # already has (same msgid) is not shown twice.
        HistoryServer.history = [*HistoryServer.history[1:],
                                 ("m3", "2026-01-01T10:05:00.000Z", "older", "while you were away")]
        factory.connections[0].dropConnection()
        await browser.call(sees, page, "while you were away")
        await browser.call(sees, page, "the last line before you came")
        assert "CHATHISTORY LATEST #lobby timestamp=2026-01-01T10:00:01.000Z 50" in factory.received
        # A reload starts with nothing shown: the history comes back from the server.
        await browser.call(page.reload)

        def history_after_reload() -> None:
            expect(page.locator("#lines .line.history")).to_have_count(2)
            sees(page, "the last line before you came")
            sees(page, "while you were away")

        await browser.call(history_after_reload)
        assert factory.received.count("CHATHISTORY LATEST #lobby * 50") == 2
    finally:
        HistoryServer.history = saved
        for connection in list(factory.connections):
            connection.dropConnection()
        await port.stopListening()


PARSING = r"""async () => {
  const irc = await import("./irc.js");
  const client = await import("./client.js");
  return {
    tagged: irc.parseLine("@time=2026-01-01T00:00:00.000Z;msgid=a\\sb\\:c;+flag :nick!u@h PRIVMSG #c :hello :world"),
    bare: irc.parseLine("ping   x"),
    empty: irc.parseLine(""),
    built: [irc.buildLine("PRIVMSG", "#c", "two words"), irc.buildLine("JOIN", "#c"),
            irc.buildLine("PRIVMSG", "bob", ":)"), irc.buildLine("TOPIC", "#c", ""),
            irc.buildLine("PRIVMSG", "#c", "no\r\nsmuggling")],
    folded: irc.casefold("Nick[]\\~"),
    nick: irc.nickOf("nick!user@host"),
    hues: [irc.nickHue("Alice"), irc.nickHue("alice"), irc.nickHue("bob")],
    channel: [irc.isChannel("#a"), irc.isChannel("a"), irc.isChannel("&a", "#&")],
    mentions: [client.mentions("hi Al!", "al"), client.mentions("also", "al"),
               client.mentions("[bot]: status?", "[bot]"), client.mentions("al", "al")],
    pacing: (() => {
      let now = 0;
      const sent = [];
      const pacer = new client.Pacer((line) => sent.push(line), 2, 1, () => now);
      const counts = [];
      pacer.push([1, 2, 3, 4, 5]);
      counts.push(sent.length);
      now = 1000;
      pacer.drain();
      counts.push(sent.length);
      now = 3500;
      pacer.drain();
      counts.push(sent.length);
      const refused = pacer.push(new Array(500).fill(0));
      pacer.clear();
      return { counts, sent, refused };
    })(),
  };
}"""


@ensure
async def test_the_pages_line_parsing(site, browser):
    page = await browser.page(site.url)
    got = await browser.call(page.evaluate, PARSING)
    assert got["tagged"] == {
        "tags": {"time": "2026-01-01T00:00:00.000Z", "msgid": "a b;c", "+flag": ""},
        "source": "nick!u@h", "command": "PRIVMSG", "params": ["#c", "hello :world"],
    }
    assert got["bare"] == {"tags": {}, "source": None, "command": "PING", "params": ["x"]}
    assert got["empty"] is None
    assert got["built"] == ["PRIVMSG #c :two words", "JOIN #c", "PRIVMSG bob ::)", "TOPIC #c :",
                            "PRIVMSG #c :no  smuggling"]
    assert got["folded"] == "nick{}|^"
    assert got["nick"] == "nick"
    assert got["hues"][0] == got["hues"][1] and 0 <= got["hues"][2] < 360
    assert got["channel"] == [True, False, True]
    assert got["mentions"] == [True, False, True, True]
    # A burst of 2, then 1 a second, in order; more than the queue holds is refused whole.
    assert got["pacing"] == {"counts": [2, 3, 5], "sent": [1, 2, 3, 4, 5], "refused": False}
