"""Issue 11's bugs, each driven through the widgets (pytest-qt, offscreen) against the real daemon."""

from __future__ import annotations

import pytest
import pytest_twisted
import test_qtclient
from conftest import RunningServer
from helpers import register, wait_until
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtGui import QColor, QGuiApplication
from PyQt6.QtWidgets import QApplication
from test_qtclient import Apps, type_line

from qtclient.theme import apply_theme, dark_palette
from twistedchat.client.session import Kind
from twistedchat.server.config import ServerConfig

# the fixtures of the client tests: logs in a temp dir, a temp QSettings file, the apps
data_home = test_qtclient.data_home
store = test_qtclient.store
apps = test_qtclient.apps


@pytest.fixture
def desktop_palette():
    """The test may change the application's palette; it is put back afterwards."""
    app = QApplication.instance()
    saved = app.palette()
    yield app
    app.setPalette(saved)
    apply_theme("system")


def luminance(colour: QColor) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.red()) + 0.7152 * channel(colour.green()) + \
        0.0722 * channel(colour.blue())


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio (1 to 21; 4.5 is readable text)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def background(widget) -> QColor:
    """The colour actually drawn in a widget's top-left corner."""
    widget.repaint()
    return widget.grab().toImage().pixelColor(QPoint(2, 2))


def labels(app) -> list[str]:
    window = app.window
    return [window.conversations.item(r).text() for r in range(window.conversations.count())]


# -- 1. a dark desktop -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug1_a_dark_desktop_palette_keeps_every_pane_readable(apps, qtbot,
                                                                     desktop_palette):
    alice = await apps.connected("alice")
    window = alice.window
    type_line(qtbot, alice, "/topic dark mode check")
    await wait_until(lambda: "dark mode check" in window.topic.text(), "topic shown")
    desktop_palette.setPalette(dark_palette())  # the desktop switches to Breeze Dark
    await wait_until(lambda: window.colours.time != "#7f8c8d", "the window follows the palette")
    window.flush()
    text = dark_palette().color(dark_palette().ColorRole.Text)
    view = window.current_view()
    for widget in (view.viewport(), window.topic, window.conversations.viewport(),
                   window.members.viewport()):
        assert contrast(background(widget), text) >= 7, widget
    assert contrast(background(view.viewport()), QColor(window.colours.time)) >= 4.5
    assert all(contrast(background(view.viewport()), QColor(c)) >= 4.5
               for c in window.colours.nicks)


# -- 2. only what the server accepted is shown as said ------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug2_a_message_to_nobody_opens_no_tab_and_says_it_was_not_sent(apps, qtbot):
    alice = await apps.connected("alice")
    await wait_until(lambda: alice.session.echo, "echo-message is on")
    type_line(qtbot, alice, "/msg nobody hello")
    await wait_until(lambda: "Not sent" in apps.text(alice, "#lobby"), "the refusal is shown")
    assert alice.session.find("nobody") is None
    assert "No such nick" in apps.text(alice, "#lobby")
    assert "<alice> hello" not in apps.text(alice, "#lobby")
    assert not alice.window.pending.isVisible()


@pytest_twisted.ensureDeferred
async def test_bug2_after_a_kick_a_typed_line_is_not_shown_as_said(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    type_line(qtbot, alice, "/kick bob out")
    await wait_until(lambda: not bob.session.find("#lobby").joined, "bob is out")
    type_line(qtbot, bob, "can I still talk?")
    await wait_until(lambda: "Not sent" in apps.text(bob, "#lobby"), "refused")
    assert "<bob> can I still talk?" not in apps.text(bob, "#lobby")


@pytest_twisted.ensureDeferred
async def test_bug2_own_lines_wait_greyed_until_the_echo(apps, qtbot):
    alice = await apps.connected("alice")
    await wait_until(lambda: alice.session.echo, "echo-message is on")
    alice.link.client.outgoing.stop()  # hold the line back, as a slow link would
    held: list[str] = []
    alice.link.client.outgoing._send = held.append
    type_line(qtbot, alice, "on its way")
    assert "on its way" in alice.window.pending.text() and alice.window.pending.isVisible()
    assert "on its way" not in apps.text(alice, "#lobby")
    alice.link.client.sendLine(held[0])
    await wait_until(lambda: "<alice> on its way" in apps.text(alice, "#lobby"), "echoed")
    assert not alice.window.pending.isVisible()


@pytest_twisted.async_yield_fixture
async def strict_server():
    """A daemon that ends a flood quickly: 5 lines at once, then 40 a second, 10 queued."""
    server = RunningServer(ServerConfig(name="test.server", network="TestNet", flood_burst=5,
                                        flood_rate=40.0, flood_queue=10))
    await server.start()
    yield server
    await server.stop()


@pytest_twisted.ensureDeferred
async def test_bug2_a_long_paste_asks_first_then_arrives_whole_and_in_order(
        strict_server, store, qtbot):
    apps = Apps(strict_server, store)
    try:
        alice = apps.make("alice", pacing=(4, 30.0))  # well under this server's limit
        await wait_until(lambda: alice.window is not None, "window")
        await wait_until(lambda: apps.members(alice, "#lobby"), "joined")
        bob = await register(strict_server, "bob")
        bob.send("JOIN #lobby")
        await bob.expect("366")
        lines = [f"line {n:03}" for n in range(60)]
        QGuiApplication.clipboard().setText("\n".join(lines) + "\n")
        qtbot.keyClick(alice.window.input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        box = alice.window.paste_box
        assert box is not None and box.isVisible() and "Send 60 lines to #lobby" in box.text()
        assert alice.window.input.text() == ""
        qtbot.keyClick(box, Qt.Key.Key_Return)  # Enter confirms
        got: list[str] = []
        for _ in lines:
            got.append((await bob.expect("PRIVMSG", "#lobby")).params[1])
        assert got == lines
        await wait_until(lambda: "line 059" in apps.text(alice, "#lobby"), "all echoed")
        assert alice.session.connected
        assert "Excess Flood" not in apps.text(alice, "#lobby")
        bob.close()
    finally:
        await apps.close_all()


# -- 3. /names -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug3_names_opens_no_bogus_tab_and_prints_the_members(apps, qtbot):
    alice = await apps.connected("alice")
    await apps.connected("bob", channel="#test")
    alice.window.show_conversation(alice.session.server.name)
    type_line(qtbot, alice, "/raw NAMES")
    type_line(qtbot, alice, "/names #test")
    await wait_until(lambda: "#test (1 member): @bob" in apps.text(alice, alice.session.server.name),
                     "the members of #test are printed")
    assert alice.session.find("*") is None and alice.session.find("#test") is None
    alice.window.show_conversation("#lobby")
    type_line(qtbot, alice, "/names")
    await wait_until(lambda: "#lobby (1 member): @alice" in apps.text(alice, "#lobby"),
                     "the current channel by default")


# -- 4 and 5: topic after a restart, the status after /nick ---------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug4_after_a_server_restart_the_old_topic_is_gone(apps, qtbot):
    alice = await apps.connected("alice")
    type_line(qtbot, alice, "/topic before the restart")
    await wait_until(lambda: "before the restart" in alice.window.topic.text(), "topic set")
    await apps.server.stop()
    await wait_until(lambda: not alice.session.connected, "down")
    await apps.server.start()
    await wait_until(lambda: alice.session.connected and alice.session.find("#lobby").joined,
                     "back in #lobby")
    await wait_until(lambda: "before the restart" not in alice.window.topic.text(),
                     "the topic bar follows the server")
    assert "No topic" in alice.window.topic.text()


@pytest_twisted.ensureDeferred
async def test_bug5_the_status_bar_follows_a_nick_change(apps, qtbot):
    alice = await apps.connected("you")
    type_line(qtbot, alice, "/nick you2")
    await wait_until(lambda: alice.session.nick == "you2", "renamed")
    assert alice.window.status_label.text().endswith("as you2")


# -- 6. commands fill in the current channel ------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug6_kick_mode_op_voice_fill_in_the_channel(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    state = apps.server.factory.core.state
    type_line(qtbot, alice, "/mode +t")
    await wait_until(lambda: "t" in state.find_channel("#lobby").modes, "mode +t set")
    type_line(qtbot, alice, "/op bob")
    await wait_until(lambda: "@bob" in apps.members(alice, "#lobby"), "bob is op")
    type_line(qtbot, alice, "/deop bob")
    type_line(qtbot, alice, "/voice bob")
    await wait_until(lambda: "+bob" in apps.members(alice, "#lobby"), "bob is voiced")
    type_line(qtbot, alice, "/kick bob go away")
    await wait_until(lambda: "You were kicked from #lobby by alice (go away)"
                     in apps.text(bob, "#lobby"), "bob kicked with the reason")
    assert "No such channel" not in apps.text(alice, "#lobby")


@pytest_twisted.ensureDeferred
async def test_bug6_clear_ctcp_ignore_and_reconnect(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    type_line(qtbot, bob, "before clear")
    await wait_until(lambda: "before clear" in apps.text(alice, "#lobby"), "seen")
    type_line(qtbot, alice, "/clear")
    assert apps.text(alice, "#lobby") == ""
    type_line(qtbot, alice, "/ctcp bob VERSION")
    await wait_until(lambda: "CTCP VERSION reply from bob: twistedchat" in
                     apps.text(alice, "#lobby"), "bob's client answered")
    type_line(qtbot, alice, "/ignore bob")
    type_line(qtbot, bob, "you cannot hear me")
    type_line(qtbot, bob, "/me waves")
    type_line(qtbot, alice, "marker")
    await wait_until(lambda: "marker" in apps.text(bob, "#lobby"), "after bob's lines")
    await wait_until(lambda: "<alice> marker" in apps.text(alice, "#lobby"), "own echo")
    assert "cannot hear me" not in apps.text(alice, "#lobby")
    assert "waves" not in apps.text(alice, "#lobby")
    type_line(qtbot, alice, "/reconnect")
    await wait_until(lambda: not alice.session.connected, "dropped")
    await wait_until(lambda: alice.session.connected and alice.session.find("#lobby").joined,
                     "reconnected and rejoined")


# -- 7. keys ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug7_alt_number_ctrl_tab_alt_arrows_pgup_and_typing_in_the_view(apps, qtbot):
    alice = await apps.connected("alice")
    window = alice.window
    type_line(qtbot, alice, "/join #dev")
    await wait_until(lambda: apps.members(alice, "#dev"), "in #dev")
    alt, ctrl = Qt.KeyboardModifier.AltModifier, Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(window.input, Qt.Key.Key_1, alt)
    assert window.current().is_server and window.input.text() == ""
    qtbot.keyClick(window.input, Qt.Key.Key_3, alt)
    assert window.current().name == "#dev"
    qtbot.keyClick(window.input, Qt.Key.Key_Tab, ctrl)
    assert window.current().is_server  # wraps around
    qtbot.keyClick(window.input, Qt.Key.Key_Right, alt)
    assert window.current().name == "#lobby"
    qtbot.keyClick(window.input, Qt.Key.Key_Left, alt)
    assert window.current().is_server
    assert window.input.text() == ""

    window.show_conversation("#lobby")
    for n in range(150):
        alice.session.info(f"filler {n}", alice.session.find("#lobby"))
    window.flush()
    view = window.current_view()
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0
    qtbot.keyClick(window.input, Qt.Key.Key_PageUp)
    assert bar.value() < bar.maximum()
    qtbot.keyClick(window.input, Qt.Key.Key_PageDown)
    assert bar.value() == bar.maximum()

    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton)
    view.setFocus()
    qtbot.keyClicks(view, "typed after a click")
    assert window.input.text() == "typed after a click"


@pytest_twisted.ensureDeferred
async def test_bug7_ctrl_f_finds_in_the_scrollback(apps, qtbot):
    alice = await apps.connected("alice")
    window = alice.window
    lobby = alice.session.find("#lobby")
    for text in ("the needle is here", "hay", "more hay"):
        alice.session.info(text, lobby)
    window.flush()
    qtbot.keyClick(window.input, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search.isVisible()
    qtbot.keyClicks(window.search.field, "needle")
    qtbot.keyClick(window.search.field, Qt.Key.Key_Return)
    assert window.current_view().textCursor().selectedText() == "needle"
    qtbot.keyClicks(window.search.field, "zzz")
    assert window.search.status.text() == "Not found"
    qtbot.keyClick(window.search.field, Qt.Key.Key_Escape)
    assert not window.search.isVisible()


# -- 8 and 9: replies in words, in the right place --------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug8_whois_lusers_and_list_read_as_sentences(apps, qtbot):
    alice = await apps.connected("alice")
    await apps.connected("bob")
    type_line(qtbot, alice, "/whois bob")
    await wait_until(lambda: "bob has been idle" in apps.text(alice, "#lobby"), "whois")
    text = apps.text(alice, "#lobby")
    assert "seconds idle, signon time" not in text and "signed on" in text
    assert "bob is ~bob@" in text or "bob is bob@" in text
    server_text = apps.text(alice, alice.session.server.name)
    assert "Current local users" in server_text
    assert not any(line.strip().split(" ", 2)[-1].startswith(("2 2:", "1 1:"))
                   for line in server_text.splitlines())
    type_line(qtbot, alice, "/list")
    await wait_until(lambda: alice.window.channel_list is not None and
                     "#lobby" in alice.window.channel_list.names(), "the channel list window")
    assert alice.window.channel_list.isVisible()
    assert "#lobby" not in apps.text(alice, alice.session.server.name).split("Current")[-1]


@pytest_twisted.ensureDeferred
async def test_bug9_a_missing_motd_is_no_error_and_a_disconnect_marks_nothing_unread(
        apps, qtbot):
    alice = await apps.connected("alice")
    type_line(qtbot, alice, "/join #dev")
    await wait_until(lambda: apps.members(alice, "#dev"), "in #dev")
    server = alice.session.server
    assert any("MOTD" in line.text and line.kind is Kind.INFO for line in server.lines)
    assert not any("MOTD" in line.text for line in alice.session.find("#dev").lines)
    await apps.server.stop()
    await wait_until(lambda: not alice.session.connected, "down")
    assert alice.session.find("#lobby").unread == 0
    assert "#lobby" in labels(alice)
    await apps.server.start()


# -- 10 and 11: what the window shows ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug10_words_titles_indent_topic_and_panes(apps, qtbot):
    alice = await apps.connected("alice")
    window = alice.window
    assert window.member_count.text() == "1 member"
    assert "TestNet" in labels(alice) and not any("*server*" in label for label in labels(alice))
    window.show_conversation(alice.session.server.name)
    assert "*server*" not in window.windowTitle() and "TestNet" in window.windowTitle()
    window.show_conversation("#lobby")
    long_topic = "read the notes at https://twisted.org/news " + "and much more " * 20
    type_line(qtbot, alice, "/topic " + long_topic)
    await wait_until(lambda: "twisted.org" in window.topic.text(), "topic shown")
    assert window.topic.wordWrap() and '<a href="https://twisted.org/news">' in window.topic.text()
    view = window.current_view()
    block = view.document().lastBlock().blockFormat()
    assert block.leftMargin() > 0 and block.textIndent() == -block.leftMargin()
    for pane in (window.conversations, window.members):
        assert pane.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    type_line(qtbot, alice, "/query someone_with_a_rather_long_nickname")
    assert not window.member_pane.isVisible()
    window.resize(1000, 600)
    window.show()
    wide = window.splitter.sizes()
    window.resize(420, 600)
    QApplication.processEvents()
    narrow = window.splitter.sizes()
    assert narrow[0] < wide[0] or narrow[0] <= 80


@pytest_twisted.ensureDeferred
async def test_bug11_a_left_channel_looks_left(apps, qtbot):
    alice = await apps.connected("alice")
    window = alice.window
    type_line(qtbot, alice, "/part")
    await wait_until(lambda: not alice.session.find("#lobby").joined, "parted")
    window.flush()
    item = window._item(alice.session.find("#lobby"))
    assert item.font().italic()
    assert item.foreground().color() != window.palette().color(window.palette().ColorRole.Text)
    assert window.member_count.text() == "Not in this channel"
    assert "not in this channel" in window.topic.text()


# -- 12. mIRC formatting and CTCP ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bug12_mirc_formatting_is_drawn_and_typeable(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    window = alice.window
    qtbot.keyClick(window.input, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.input, "loud")
    qtbot.keyClick(window.input, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.input, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.input, "04red")
    assert window.input.text() == "\x02loud\x02\x0304red"
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    await wait_until(lambda: "loudred" in apps.text(bob, "#lobby"), "bob reads it")
    html = bob.window.views[id(bob.session.find("#lobby"))].toHtml()
    assert "font-weight:700" in html or "font-weight:600" in html
    assert f"color:{bob.window.colours.mirc[4]}" in html  # red, as drawn on this background


@pytest_twisted.ensureDeferred
async def test_bug12_ctcp_version_is_answered_and_requests_are_shown(apps, qtbot):
    alice = await apps.connected("alice")
    raw = await register(apps.server, "prober")
    raw.send("PRIVMSG alice :\x01VERSION\x01")
    reply = await raw.expect("NOTICE", "prober")
    assert reply.params[1].startswith("\x01VERSION twistedchat")
    await wait_until(lambda: "prober asked for CTCP VERSION" in apps.text(alice, "#lobby"),
                     "shown where alice looks")
    assert alice.session.find("prober") is None  # no tab for a CTCP
    raw.close()
