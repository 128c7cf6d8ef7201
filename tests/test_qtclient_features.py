"""What a HexChat/Quassel user misses most, driven through the widgets against the real daemon:
theme and preferences, menus, away state, logs and restored scrollback, the unread marker, the
channel list, completion, and several servers in one window."""

from __future__ import annotations

import pytest
import pytest_twisted
import test_qtclient
from conftest import RunningServer
from helpers import register, wait_until
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication
from test_qtclient import type_line

from qtclient.preferences import load_preferences
from qtclient.render import DARK
from qtclient.servers import ServerEntry, load_servers, save_servers
from qtclient.theme import apply_theme, is_dark
from twistedchat.server.config import ServerConfig

# the fixtures of the client tests: logs in a temp dir, a temp QSettings file, the apps
data_home = test_qtclient.data_home
store = test_qtclient.store
apps = test_qtclient.apps


@pytest.fixture(autouse=True)
def system_theme():
    """A test that picks a theme leaves the desktop's behind."""
    yield
    apply_theme("system")


@pytest.fixture
def offline(qtbot):
    """A window over a session that is not connected (its link never runs): (window, session)."""
    from twisted.internet.task import Clock

    from qtclient.window import MainWindow
    from twistedchat.client.link import SessionLink
    from twistedchat.client.session import Session

    session = Session("viewer")
    window = MainWindow(session, SessionLink(Clock(), session, "127.0.0.1", 1))
    qtbot.addWidget(window)
    return window, session


def action(menu, label: str):
    return next(a for a in menu.actions() if a.text() == label)


@pytest_twisted.ensureDeferred
async def test_preferences_theme_font_time_highlights_and_notifications_are_kept(
        apps, qtbot, store):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    window = alice.window
    window.activateWindow()
    await wait_until(window.isActiveWindow, "alice's window is active")
    qtbot.keyClick(window.input, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    dialog = window.findChild(type(window.open_preferences()))
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.font_size.setValue(15)
    dialog.time_format.setCurrentIndex(dialog.time_format.findData("%H:%M:%S"))
    dialog.highlights.setText("release, deploy")
    dialog.notifications.setChecked(False)
    dialog.accept()
    assert is_dark(QApplication.instance().palette())
    assert window.colours is DARK
    assert window.current_view().font().pointSize() == 15
    window.show_conversation(alice.session.server.name)
    type_line(qtbot, bob, "the release is out")
    await wait_until(lambda: "release is out" in apps.text(alice, "#lobby"), "seen")
    lobby = alice.session.find("#lobby")
    assert lobby.lines[-1].mention and lobby.mentions == 1
    assert not window.notifier.shown  # notifications are off
    time_text = lobby.lines[-1].time.strftime("%H:%M:%S")
    assert time_text in apps.text(alice, "#lobby")
    remembered = load_preferences(store)
    assert (remembered.theme, remembered.font_size, remembered.time_format,
            remembered.highlights, remembered.notifications) == (
        "dark", 15, "%H:%M:%S", ["release", "deploy"], False)
    apply_theme("system")
    assert not is_dark(QApplication.instance().palette())
    again = apps.make("carol")  # a new start reads the same settings
    assert again.preferences.theme == "dark" and is_dark(QApplication.instance().palette())


@pytest_twisted.ensureDeferred
async def test_member_menu_and_away_members_greyed(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    window = alice.window
    await wait_until(lambda: "bob" in apps.members(alice, "#lobby"), "bob listed")
    type_line(qtbot, bob, "/away lunch")
    await wait_until(lambda: alice.session.find("#lobby").members["bob"].away, "away-notify")
    window.flush()
    bob_item = window.members.findItems("bob", Qt.MatchFlag.MatchExactly)[0]
    alice_item = window.members.findItems("@alice", Qt.MatchFlag.MatchExactly)[0]
    assert bob_item.foreground().color() != alice_item.foreground().color()
    assert bob_item.toolTip() == "<p>bob (away)</p>"
    menu = window.member_pane.menu_for("bob")
    labels = [a.text() for a in menu.actions() if a.text()]
    assert labels == ["Open conversation", "Who is this?", "Give op", "Take op", "Give voice",
                      "Take voice", "Kick", "Ban", "Ignore"]
    action(menu, "Give op").trigger()
    await wait_until(lambda: "@bob" in apps.members(alice, "#lobby"), "bob is op")
    action(window.member_pane.menu_for("bob"), "Open conversation").trigger()
    assert window.current().name == "bob"


@pytest_twisted.ensureDeferred
async def test_conversation_menu_leaves_rejoins_and_mutes(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    window = alice.window
    lobby = alice.session.find("#lobby")
    action(window.conversations.menu_for(lobby), "Leave the channel").trigger()
    await wait_until(lambda: not lobby.joined, "left")
    action(window.conversations.menu_for(lobby), "Rejoin").trigger()
    await wait_until(lambda: lobby.joined, "back")
    action(window.conversations.menu_for(lobby), "Mute (no counts, no notifications)").trigger()
    window.show_conversation(alice.session.server.name)
    type_line(qtbot, bob, "alice: muted?")
    await wait_until(lambda: "muted?" in apps.text(alice, "#lobby"), "delivered")
    assert lobby.unread == 0 and not window.notifier.shown
    assert window._item(lobby).font().italic()


@pytest_twisted.ensureDeferred
async def test_logs_on_disk_restore_the_scrollback_after_a_restart(apps, qtbot, data_home):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    type_line(qtbot, bob, "remember this tomorrow")
    await wait_until(lambda: "remember this" in apps.text(alice, "#lobby"), "seen")
    await alice.quit()
    log = data_home / "twistedchat" / "logs" / "127.0.0.1" / "#lobby.log"
    assert "remember this tomorrow" in log.read_text()
    again = await apps.connected("alice")
    text = apps.text(again, "#lobby")
    assert text.index("remember this tomorrow") < text.rindex("You joined #lobby")


@pytest_twisted.ensureDeferred
async def test_new_messages_marker_and_the_cue_below(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    window = alice.window
    type_line(qtbot, bob, "read already")
    await wait_until(lambda: "read already" in apps.text(alice, "#lobby"), "seen")
    window.show_conversation(alice.session.server.name)
    type_line(qtbot, bob, "while you were away")
    await wait_until(lambda: "while you were away" in apps.text(alice, "#lobby"), "arrived")
    window.show_conversation("#lobby")
    text = apps.text(alice, "#lobby")
    assert text.index("read already") < text.index("new messages") < text.index("while you were")
    view = window.current_view()
    for n in range(80):
        alice.session.info(f"filler {n}", alice.session.find("#lobby"))
    window.flush()
    view.verticalScrollBar().setValue(0)
    alice.session.info("out of sight", alice.session.find("#lobby"))
    window.flush()
    assert view.cue.isVisible() or not view.cue.isHidden()
    qtbot.mouseClick(view.cue, Qt.MouseButton.LeftButton)
    assert view.at_end() and view.cue.isHidden()


@pytest_twisted.ensureDeferred
async def test_channel_list_window_joins_on_double_click(apps, qtbot):
    alice = await apps.connected("alice")
    await apps.connected("bob", channel="#projects")
    window = alice.window
    window.activateWindow()  # window shortcuts work in the active window
    await wait_until(window.isActiveWindow, "alice's window is active")
    qtbot.keyClick(window.input, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: window.channel_list is not None and
                     "#projects" in window.channel_list.names(), "listed")
    listing = window.channel_list
    qtbot.keyClicks(listing.filter, "proj")
    assert listing.names() == ["#projects"]
    listing.table.cellDoubleClicked.emit(0, 0)
    await wait_until(lambda: alice.session.find("#projects") is not None and
                     alice.session.find("#projects").joined, "joined from the list")


@pytest_twisted.ensureDeferred
async def test_tab_completes_channels_and_commands(apps, qtbot):
    alice = await apps.connected("alice")
    window = alice.window
    qtbot.keyClicks(window.input, "/jo")
    qtbot.keyClick(window.input, Qt.Key.Key_Tab)
    assert window.input.text() == "/join "
    qtbot.keyClicks(window.input, "#lo")
    qtbot.keyClick(window.input, Qt.Key.Key_Tab)
    assert window.input.text() == "/join #lobby "


@pytest_twisted.async_yield_fixture
async def other_server():
    server = RunningServer(ServerConfig(name="other.server", network="OtherNet"))
    await server.start()
    yield server
    await server.stop()


@pytest_twisted.ensureDeferred
async def test_server_list_connects_a_second_network_into_the_same_window(
        apps, other_server, qtbot, store):
    alice = await apps.connected("alice")
    window = alice.window
    qtbot.keyClick(window.input, Qt.Key.Key_S,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    servers = alice.server_list
    assert servers is not None and servers.isVisible()
    servers.add()
    editor = servers.editor
    editor.name.setText("Other")
    editor.host.setText(other_server.host)
    editor.port.setValue(other_server.port)
    editor.nick.setText("alice2")
    editor.channels.setText("#other #second")
    editor.auto_connect.setChecked(True)
    editor.accept()
    assert [e.name for e in load_servers(store)] == ["Other"]
    servers.list.setCurrentRow(0)
    servers.connect_selected()
    await wait_until(lambda: len(window.networks) == 2 and
                     window.networks[1].session.find("#second") is not None and
                     window.networks[1].session.find("#second").joined, "second network joined")
    await wait_until(lambda: window.conversation_groups() == [
        ["TestNet", "#lobby"], ["OtherNet", "#other", "#second"]], "grouped per network")
    listing = window.conversations
    assert [listing._index_is_server(listing.model().index(row, 0))
            for row in range(listing.count())] == [True, False, True, False, False]  # a tree
    window.show_conversation("#other", network=1)
    assert window.session is window.networks[1].session
    type_line(qtbot, alice, "hello other")
    await wait_until(lambda: any(line.text == "hello other" for line in
                                 window.networks[1].session.find("#other").lines), "echoed")
    state = other_server.factory.core.state
    assert state.find_user("alice2") is not None
    assert "alice2" in window.windowTitle()
    other = window.networks[1].session.find("#other")
    assert other.unread == 0
    window.show_conversation("#lobby", network=0)  # looking at the first network again
    bob = await register(other_server, "bob")
    bob.send("JOIN #other", "PRIVMSG #other :news on the other network")
    await wait_until(lambda: other.unread == 1, "counted unread while looking elsewhere")
    assert window.current().name == "#lobby"
    bob.close()

    servers.list.setCurrentRow(0)
    servers.remove()
    assert load_servers(store) == []


@pytest_twisted.ensureDeferred
async def test_auto_connect_servers_connect_at_start_without_the_dialog(
        apps, other_server, qtbot, store):
    save_servers(store, [ServerEntry("Main", apps.server.host, apps.server.port, "zoe",
                                     channels=["#a", "#b"], auto_connect=True),
                         ServerEntry("Other", other_server.host, other_server.port, "zoe2",
                                     channels=["#c"], auto_connect=True),
                         ServerEntry("Off", "example.invalid", 1, "x")])
    app = apps.make(connect_now=False)
    await wait_until(lambda: app.window is not None, "connected at once")
    assert not app.dialog.isVisible()
    await wait_until(lambda: app.window.conversation_groups() == [
        ["TestNet", "#a", "#b"], ["OtherNet", "#c"]], "both networks with their channels")


def test_a_huge_burst_is_drawn_over_several_event_loop_turns(offline, qtbot):
    from qtclient.drawing import FLUSH_CHUNK

    window, session = offline
    session.on_join("#b", "viewer")
    window.flush()
    for n in range(1000):
        session.on_message("sender", "#b", f"line {n}")
    window._flush()  # what one event-loop turn shows
    view = window.views[id(session.find("#b"))]
    assert view.document().blockCount() <= FLUSH_CHUNK + 1 and window._pending
    qtbot.waitUntil(lambda: not window._pending)
    text = view.toPlainText()
    assert "line 999" in text and text.index("line 0\n") < text.index("line 999")


@pytest_twisted.ensureDeferred
async def test_members_already_away_when_we_join_are_greyed(apps, qtbot):
    bob = await apps.connected("bob")
    type_line(qtbot, bob, "/away gone fishing")
    await wait_until(lambda: "marked as being away" in apps.text(bob, "#lobby"), "bob is away")
    alice = await apps.connected("alice")
    await wait_until(lambda: alice.session.find("#lobby").members.get("bob") is not None and
                     alice.session.find("#lobby").members["bob"].away, "WHO told alice")
    for name in ("#lobby", alice.session.server.name):  # the WHO replies were not printed
        assert "End of" not in apps.text(alice, name).replace("End of /MOTD", "")
        assert "gone fishing" not in apps.text(alice, name)


@pytest_twisted.ensureDeferred
async def test_escape_cancels_a_paste_and_a_server_can_be_edited(apps, qtbot, store):
    from PyQt6.QtGui import QGuiApplication

    alice = await apps.connected("alice")
    window = alice.window
    QGuiApplication.clipboard().setText("one\ntwo")
    qtbot.keyClick(window.input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    box = window.paste_box
    assert box.isVisible()
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert not box.isVisible()
    assert "one" not in apps.text(alice, "#lobby") and not window.pending.isVisible()

    save_servers(store, [ServerEntry("Old", "old.example.org", 6667, "ada", channels=["#a"])])
    servers = alice.show_servers()
    servers.edit()
    servers.editor.name.setText("")
    servers.editor.accept()
    assert "Give the server a name" in servers.editor.error.text()
    servers.editor.name.setText("New")
    servers.editor.channels.setText("a b")
    servers.editor.accept()
    assert [(e.name, e.channels) for e in load_servers(store)] == [("New", ["#a", "#b"])]


@pytest_twisted.ensureDeferred
async def test_the_ignore_list_is_remembered(apps, qtbot):
    alice = await apps.connected("alice")
    type_line(qtbot, alice, "/ignore spammer")
    type_line(qtbot, alice, "/ignore *!*@bad.example")
    type_line(qtbot, alice, "/unignore spammer")
    await alice.quit()
    again = await apps.connected("alice")
    assert again.session.filters.ignores == ["*!*@bad.example"]


def test_the_topic_bar_draws_formatting_and_caps_a_huge_topic(offline):
    from qtclient.centre import MAX_TOPIC_SHOWN

    window, session = offline
    session.on_join("#c", "viewer")
    window.show_conversation("#c")
    session.on_topic("#c", "\x02Rules\x02 <b>" + "x" * 5000)
    assert '<span style="font-weight:bold">Rules</span> &lt;b&gt;' in window.topic.text()
    assert len(window.topic.text()) < MAX_TOPIC_SHOWN + 200
    assert window.topic.toolTip() == "<p>Rules &lt;b&gt;" + "x" * 5000 + "</p>"


def test_text_from_servers_or_pastes_is_never_taken_as_html(offline):
    window, session = offline
    session.set_status("Connection lost: <img src=x> <b>bold</b>", False)
    assert window.status_label.textFormat() == Qt.TextFormat.PlainText
    session.on_join("#c", "viewer")
    window.show_conversation("#c")
    window.ask_paste(["<i>one</i>", "two"])
    assert "&lt;i&gt;one&lt;/i&gt;" in window.paste_box.informativeText()
    window.paste_box.reject()


@pytest_twisted.ensureDeferred
async def test_an_auto_connect_server_that_is_down_leaves_the_dialog_in_charge(
        apps, qtbot, store):
    from helpers import free_port

    save_servers(store, [ServerEntry("Down", "127.0.0.1", free_port(), "zoe",
                                     channels=["#gone"], auto_connect=True)])
    app = apps.make(connect_now=False)
    await wait_until(lambda: "connection refused" in app.dialog.error.text(), "says why")
    assert (app.dialog.nick.text(), app.dialog.channel.text()) == ("zoe", "#gone")
    app.dialog.host.setText(apps.server.host)
    app.dialog.port.setValue(apps.server.port)
    app.dialog.channel.setText("#here")
    qtbot.mouseClick(app.dialog.join_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: app.window is not None and app.session.find("#here") is not None
                     and app.session.find("#here").joined, "joined the dialog's channel")
    assert app.session.find("#gone") is None
