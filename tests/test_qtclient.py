"""The desktop client, driven through its widgets (pytest-qt, offscreen) against the real daemon."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import pytest_twisted
from conftest import RunningServer
from helpers import checkout_env, free_port, register, wait_until, write_self_signed
from PyQt6.QtCore import QSettings, Qt

from qtclient.__main__ import apply_options, parse_args
from qtclient.app import ChatApp
from qtclient.dialog import ConnectSettings, load_settings
from twistedchat.client.session import Kind
from twistedchat.server.config import ServerConfig

FAST_RETRY = {"initial_delay": 0.1, "max_delay": 0.5}


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Conversation logs go to a temp XDG data directory, never the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "client.ini"), QSettings.Format.IniFormat)


class Apps:
    """Client apps started by a test, all quit (and their windows closed) at the end."""

    def __init__(self, server: RunningServer, store: QSettings) -> None:
        self.server = server
        self.store = store
        self.apps: list[ChatApp] = []

    def make(self, nick: str = "", *, channel: str = "#lobby", connect_now: bool = True,
             port: int | None = None, password: str = "", **options) -> ChatApp:
        from twisted.internet import reactor

        settings = ConnectSettings(host=self.server.host, port=port or self.server.port,
                                   nick=nick, channel=channel, password=password)
        app = ChatApp(reactor, settings, self.store, connect_now=connect_now,
                      link_options={**FAST_RETRY, **options})
        self.apps.append(app)
        app.start()
        return app

    async def connected(self, nick: str, **kwargs) -> ChatApp:
        app = self.make(nick, **kwargs)
        await wait_until(lambda: app.window is not None, f"{nick}'s window opens")
        channel = kwargs.get("channel", "#lobby")
        if channel:
            await wait_until(lambda: self.members(app, channel), f"{nick} is in {channel}")
        return app

    @staticmethod
    def members(app: ChatApp, channel: str) -> list[str]:
        """What the member list widget shows while ``channel`` is the current conversation."""
        window = app.window
        assert window is not None
        window.show_conversation(channel)
        window.flush()
        return [window.members.item(row).text() for row in range(window.members.count())]

    @staticmethod
    def text(app: ChatApp, name: str) -> str:
        """The plain text of a conversation's message view."""
        window = app.window
        assert window is not None and app.session is not None
        window.flush()
        conversation = app.session.find(name)
        assert conversation is not None, f"no conversation {name}"
        return window.views[id(conversation)].toPlainText()

    async def close_all(self) -> None:
        for app in self.apps:
            await app.quit()
            app.dialog.close()


@pytest_twisted.async_yield_fixture
async def apps(chat_server, store):
    made = Apps(chat_server, store)
    yield made
    await made.close_all()


def type_line(qtbot, app: ChatApp, text: str) -> None:
    """Type ``text`` in the input line and press Enter, as a person does."""
    window = app.window
    assert window is not None
    qtbot.keyClicks(window.input, text)
    qtbot.keyClick(window.input, Qt.Key.Key_Return)


@pytest_twisted.ensureDeferred
async def test_two_windows_join_talk_and_see_each_other(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    await wait_until(lambda: apps.members(alice, "#lobby") == ["@alice", "bob"],
                     "alice sees bob in the member list")
    assert apps.members(bob, "#lobby") == ["@alice", "bob"]
    assert "bob joined #lobby" in apps.text(alice, "#lobby")

    type_line(qtbot, alice, "hello bob")
    await wait_until(lambda: "<alice> hello bob" in apps.text(bob, "#lobby"), "bob reads alice")
    assert "<alice> hello bob" in apps.text(alice, "#lobby")  # our own line shows too

    bob.window.input.setText("hi alice")
    qtbot.mouseClick(bob.window.send_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: "<bob> hi alice" in apps.text(alice, "#lobby"), "Send button")
    assert bob.window.input.text() == ""

    type_line(qtbot, bob, "/me waves")
    await wait_until(lambda: "* bob waves" in apps.text(alice, "#lobby"), "an action")


@pytest_twisted.ensureDeferred
async def test_nick_change_and_quit_are_seen(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    await wait_until(lambda: "bob" in apps.members(alice, "#lobby"), "bob listed")

    type_line(qtbot, bob, "/nick robert")
    await wait_until(lambda: "bob is now known as robert" in apps.text(alice, "#lobby"),
                     "alice sees the nick change")
    assert apps.members(alice, "#lobby") == ["@alice", "robert"]
    await wait_until(lambda: bob.session.nick == "robert", "bob's client took the new nick too")
    assert "robert" in bob.window.windowTitle()

    bob.window.close()  # closing the window quits
    await wait_until(lambda: "robert quit (Quit: Leaving)" in apps.text(alice, "#lobby"),
                     "alice sees robert quit with the reason")
    assert apps.members(alice, "#lobby") == ["@alice"]
    await wait_until(lambda: apps.server.factory.core.state.find_user("robert") is None,
                     "the server let robert go")
    assert bob.exited


@pytest_twisted.ensureDeferred
async def test_a_link_in_a_message_opens_in_the_browser(apps, qtbot, monkeypatch):
    from PyQt6.QtCore import QUrl
    from PyQt6.QtGui import QDesktopServices

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()))
    alice = await apps.connected("alice")
    type_line(qtbot, alice, "notes at https://twisted.org/news.")
    view = alice.window.views[id(alice.session.find("#lobby"))]
    await wait_until(lambda: "twisted.org" in apps.text(alice, "#lobby"), "shown")
    assert '<a href="https://twisted.org/news">' in view.toHtml().replace("&quot;", '"')
    view.anchorClicked.emit(QUrl("https://twisted.org/news"))
    assert opened == ["https://twisted.org/news"]
    assert "twisted.org" in apps.text(alice, "#lobby")  # the view stayed on the conversation


@pytest_twisted.ensureDeferred
async def test_a_taken_nick_is_refused_with_one_clear_line(apps, qtbot):
    alice = await apps.connected("alice")
    await apps.connected("bob")
    type_line(qtbot, alice, "/nick bob")
    await wait_until(lambda: "already in use" in apps.text(alice, "#lobby"), "433 is shown")
    assert apps.text(alice, "#lobby").count("already in use") == 1
    assert alice.session.nick == "alice"


@pytest_twisted.ensureDeferred
async def test_slash_quit_sends_the_reason_and_closes_the_window(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    type_line(qtbot, bob, "/quit gone fishing")
    await wait_until(lambda: "bob quit (Quit: gone fishing)" in apps.text(alice, "#lobby"),
                     "alice sees bob's own reason")
    await wait_until(lambda: bob.exited and not bob.window.isVisible(), "bob's window closed")


@pytest_twisted.ensureDeferred
async def test_private_message_opens_a_conversation_and_notifies(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    alice.window.activateWindow()  # bob looks elsewhere
    await wait_until(lambda: not bob.window.isActiveWindow(), "bob's window is in the background")
    type_line(qtbot, alice, "/msg bob are you there?")
    await wait_until(lambda: bob.session.find("alice") is not None, "bob gets a private tab")
    assert "<alice> are you there?" in apps.text(bob, "alice")
    assert ("Message from alice", "are you there?") in bob.window.notifier.shown
    labels = [bob.window.conversations.item(r).text()
              for r in range(bob.window.conversations.count())]
    assert "alice  (1, @1)" in labels  # unread, and counted as for-you

    type_line(qtbot, alice, "bob: look here")  # a mention in the channel
    await wait_until(lambda: any("look here" in text for _, text in bob.window.notifier.shown),
                     "bob is notified of the mention")
    lobby = bob.session.find("#lobby")
    assert lobby.lines[-1].mention


@pytest_twisted.ensureDeferred
async def test_no_notification_while_looking_at_the_conversation(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    bob.window.show_conversation("#lobby")
    bob.window.activateWindow()
    await wait_until(bob.window.isActiveWindow, "bob's window has the focus")
    type_line(qtbot, alice, "bob: you see this already")
    await wait_until(lambda: "you see this already" in apps.text(bob, "#lobby"), "delivered")
    assert not bob.window.notifier.shown


@pytest_twisted.ensureDeferred
async def test_input_line_history_and_tab_completion(apps, qtbot):
    alice = await apps.connected("alice")
    await apps.connected("bob")
    await wait_until(lambda: "bob" in apps.members(alice, "#lobby"), "bob listed")
    window = alice.window
    qtbot.keyClicks(window.input, "bo")
    qtbot.keyClick(window.input, Qt.Key.Key_Tab)
    assert window.input.text() == "bob: "
    assert window.input.hasFocus() or not window.isActiveWindow()  # Tab did not move focus away
    qtbot.keyClicks(window.input, "first")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    type_line(qtbot, alice, "second")
    qtbot.keyClick(window.input, Qt.Key.Key_Up)
    assert window.input.text() == "second"
    qtbot.keyClick(window.input, Qt.Key.Key_Up)
    assert window.input.text() == "bob: first"
    qtbot.keyClick(window.input, Qt.Key.Key_Down)
    qtbot.keyClick(window.input, Qt.Key.Key_Down)
    assert window.input.text() == ""


@pytest_twisted.ensureDeferred
async def test_join_part_topic_and_unknown_commands(apps, qtbot):
    alice = await apps.connected("alice")
    type_line(qtbot, alice, "/join #dev")
    await wait_until(lambda: apps.members(alice, "#dev") == ["@alice"], "alice is in #dev")
    assert alice.window.current().name == "#dev"
    type_line(qtbot, alice, "/topic Release on Friday")
    await wait_until(lambda: alice.window.topic.text() == "Release on Friday", "topic bar")
    type_line(qtbot, alice, "/frobnicate now")
    await wait_until(lambda: "Unknown command" in apps.text(alice, "#dev"), "421 is shown")
    type_line(qtbot, alice, "/part")
    await wait_until(lambda: "You left #dev" in apps.text(alice, "#dev"), "parted")
    assert apps.server.factory.core.state.find_channel("#dev") is None


@pytest_twisted.ensureDeferred
async def test_unread_counter_for_a_conversation_not_shown(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    bob.window.show_conversation(bob.session.server.name)
    type_line(qtbot, alice, "one")
    type_line(qtbot, alice, "two")
    await wait_until(lambda: bob.session.find("#lobby").unread == 2, "two unread")
    item = bob.window._item(bob.session.find("#lobby"))
    assert item.text() == "#lobby  (2)" and item.font().bold()
    bob.window.show_conversation("#lobby")
    assert item.text() == "#lobby" and not item.font().bold()


@pytest_twisted.ensureDeferred
async def test_dialog_join_button_connects_and_remembers(apps, qtbot, store):
    app = apps.make(connect_now=False)
    dialog = app.dialog
    assert dialog.isVisible()
    assert dialog.port.value() == apps.server.port
    dialog.nick.setText("carol")
    qtbot.keyClick(dialog.nick, Qt.Key.Key_Return)  # Enter is Join
    await wait_until(lambda: app.window is not None, "the window opens")
    assert not dialog.isVisible()
    remembered = load_settings(store)
    assert (remembered.nick, remembered.port, remembered.channel) == (
        "carol", apps.server.port, "#lobby")


@pytest_twisted.ensureDeferred
async def test_dialog_says_connection_refused(apps, qtbot):
    app = apps.make("dave", port=free_port())
    await wait_until(lambda: app.dialog.error.isVisible() and app.dialog.join_button.isEnabled(),
                     "the dialog shows an error")
    assert "connection refused" in app.dialog.error.text()
    assert app.window is None


@pytest_twisted.ensureDeferred
async def test_dialog_offers_another_nick_when_taken(apps, qtbot):
    await apps.connected("alice")
    app = apps.make("alice")
    await wait_until(lambda: "already in use" in app.dialog.error.text(), "nick in use")
    assert app.dialog.nick.text() == "alice_"
    qtbot.mouseClick(app.dialog.join_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: app.window is not None, "joined with the offered nick")
    assert app.session.nick == "alice_"


@pytest_twisted.ensureDeferred
async def test_dialog_refuses_a_bad_nick_without_connecting(apps, qtbot):
    app = apps.make("9lives")
    assert app.dialog.isVisible()
    assert "cannot be a nickname" in app.dialog.error.text()
    assert app.link is None


@pytest_twisted.async_yield_fixture
async def password_server():
    server = RunningServer(ServerConfig(name="test.server", password="sesame"))
    await server.start()
    yield server
    await server.stop()


@pytest_twisted.ensureDeferred
async def test_dialog_says_the_password_is_wrong(password_server, store, qtbot):
    apps = Apps(password_server, store)
    try:
        wrong = apps.make("erin", password="open")
        none = apps.make("frank")
        await wait_until(lambda: "refused the password" in wrong.dialog.error.text(), "wrong")
        await wait_until(lambda: "needs a password" in none.dialog.error.text(), "missing")
        right = await apps.connected("grace", password="sesame")
        assert right.session.connected
    finally:
        await apps.close_all()


@pytest_twisted.ensureDeferred
async def test_reconnects_after_the_server_restarts_and_rejoins(apps, qtbot):
    alice = await apps.connected("alice")
    type_line(qtbot, alice, "/join #dev")
    await wait_until(lambda: apps.members(alice, "#dev") == ["@alice"], "in #dev")
    await apps.server.stop()
    await wait_until(lambda: not alice.session.connected, "the loss is noticed")
    status = alice.window.status_label.text()
    assert "lost" in status or "retrying" in status
    assert "Disconnected" in apps.text(alice, "#lobby")
    assert apps.members(alice, "#lobby") == []

    await apps.server.start()
    await wait_until(lambda: alice.session.connected, "reconnected")
    await wait_until(lambda: apps.members(alice, "#dev") == ["@alice"], "rejoined #dev")
    await wait_until(lambda: apps.members(alice, "#lobby") == ["@alice"], "rejoined #lobby")
    assert "Connected to" in alice.window.status_label.text()
    # and the others can hear us again
    bob = await register(apps.server, "bob")
    bob.send("JOIN #lobby")
    await bob.expect("366")
    type_line(qtbot, alice, "back again")
    await bob.expect("PRIVMSG", "#lobby", "back again")
    bob.close()


@pytest_twisted.ensureDeferred
async def test_server_errors_and_kicks_show_plainly(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    type_line(qtbot, alice, "/raw KICK #lobby bob :enough")
    await wait_until(lambda: "You were kicked from #lobby by alice (enough)"
                     in apps.text(bob, "#lobby"), "bob sees the kick")
    assert apps.members(bob, "#lobby") == []
    await wait_until(lambda: "alice kicked bob (enough)" in apps.text(alice, "#lobby"),
                     "alice sees her kick")
    type_line(qtbot, bob, "still here?")  # not in the channel any more
    await wait_until(lambda: any(line.kind is Kind.ERROR
                                 for line in bob.session.find("#lobby").lines), "an error line")


def test_command_line_options_and_usage_errors(capsys):
    args = parse_args(["--host", "chat.example.org", "--port", "6697", "--nick", "zoe", "--tls",
                       "--channel", "#class"])
    assert (args.host, args.port, args.nick, args.tls, args.channel) == (
        "chat.example.org", 6697, "zoe", True, "#class")
    remembered = ConnectSettings(host="old.example.org", port=7000, nick="old")
    merged = apply_options(remembered, parse_args(["--nick", "new", "--tls-ca", "cert.pem"]))
    assert (merged.host, merged.port, merged.nick, merged.tls) == (
        "old.example.org", 7000, "new", True)
    assert merged.tls_ca == os.path.abspath("cert.pem")
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--port", "70000"])
    assert exit_info.value.code == 2
    assert "--port: 70000 is not a port number" in capsys.readouterr().err


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "qtclient", "--help"], capture_output=True,
                            text=True, env=checkout_env(), timeout=60)
    assert result.returncode == 0
    assert "--nick" in result.stdout and "--tls" in result.stdout


@pytest_twisted.async_yield_fixture
async def tls_server(tmp_path):
    """The daemon on an ``ssl:`` listener with a self-signed certificate for localhost:
    yields (port, path of cert.pem)."""
    from twisted.internet import endpoints, reactor

    from twistedchat.server.net import ChatFactory

    key, cert = write_self_signed(tmp_path)
    factory = ChatFactory(ServerConfig(name="test.server"))
    listening = await endpoints.serverFromString(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}").listen(factory)
    yield listening.getHost().port, cert
    await listening.stopListening()
    await factory.shutdown("test over")


@pytest_twisted.ensureDeferred
async def test_tls_connects_and_an_untrusted_certificate_is_explained(tls_server):
    from twisted.internet import reactor, ssl

    from twistedchat.client.link import LinkError, SessionLink
    from twistedchat.client.session import Session

    port, cert = tls_server
    trusted = ssl.optionsForClientTLS(
        "localhost", trustRoot=ssl.Certificate.loadPEM(cert.read_bytes()))
    session = Session("secure")
    link = SessionLink(reactor, session, "localhost", port, tls=True, tls_options=trusted,
                       channels=["#tls"])
    await link.start()
    await wait_until(lambda: session.find("#tls") is not None and session.find("#tls").joined,
                     "joined over TLS")
    await link.stop()

    untrusting = SessionLink(reactor, Session("doubter"), "localhost", port, tls=True)
    with pytest.raises(LinkError) as failed:
        await untrusting.start()
    assert "TLS failed" in str(failed.value) and "certificate" in str(failed.value)


@pytest_twisted.ensureDeferred
async def test_cancel_in_the_dialog_exits(store, qtbot):
    from twisted.internet import reactor

    exits: list[bool] = []
    app = ChatApp(reactor, ConnectSettings(nick="zed"), store, on_exit=lambda: exits.append(True))
    app.start()
    assert app.dialog.isVisible()
    qtbot.keyClick(app.dialog, Qt.Key.Key_Escape)
    await wait_until(lambda: exits == [True], "the app exits")
    assert app.link is None and not app.dialog.isVisible()


@pytest_twisted.ensureDeferred
async def test_keyboard_shortcuts_switch_and_close_conversations(apps, qtbot):
    alice = await apps.connected("alice")
    window = alice.window
    type_line(qtbot, alice, "/query bob")
    assert window.current().name == "bob"
    names = [window._conversation_of(window.conversations.item(r)).name
             for r in range(window.conversations.count())]
    assert names == [alice.session.server.name, "#lobby", "bob"]
    qtbot.keyClick(window.input, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert window.current().is_server  # wraps around
    qtbot.keyClick(window.input, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert window.current().name == "bob"
    qtbot.keyClick(window.input, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert alice.session.find("bob") is None and window.conversations.count() == 2
    qtbot.keyClick(window.input, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier)
    assert window.input.text() == "/join #"


@pytest_twisted.ensureDeferred
async def test_the_window_connects_to_a_self_signed_server_given_its_certificate(
        tls_server, tmp_path, store, qtbot):
    """The README's self-signed certificate works for our own client with --tls-ca cert.pem."""
    from twisted.internet import reactor

    port, cert = tls_server
    settings = ConnectSettings("localhost", port, "secure", tls=True, tls_ca=str(cert))
    app = ChatApp(reactor, settings, store, connect_now=True)
    app.start()
    await wait_until(lambda: app.window is not None, "connected over TLS")
    assert load_settings(store).tls_ca == str(cert)
    await app.quit()

    missing = ChatApp(reactor, ConnectSettings("localhost", port, "lost", tls=True,
                                               tls_ca=str(tmp_path / "nope.pem")),
                      store, connect_now=True)
    missing.start()
    assert "Cannot use the certificate file" in missing.dialog.error.text()
    assert missing.link is None
    missing.dialog.close()


@pytest_twisted.ensureDeferred
async def test_a_private_conversation_follows_a_nick_change_and_merges(apps, qtbot):
    alice = await apps.connected("alice")
    bob = await apps.connected("bob")
    robert = await apps.connected("robert")
    type_line(qtbot, robert, "/msg alice robert here, leaving soon")
    await wait_until(lambda: alice.session.find("robert") is not None, "robert's tab")
    type_line(qtbot, bob, "/msg alice hello, bob here")  # strictly later than robert's
    await wait_until(lambda: alice.session.find("bob") is not None, "bob's tab")
    type_line(qtbot, robert, "/quit")
    await wait_until(lambda: "robert quit" in apps.text(alice, "robert"), "robert left")
    type_line(qtbot, bob, "/nick robert")  # bob takes the free nick: his tab merges into robert's
    await wait_until(lambda: alice.session.find("bob") is None, "bob's tab follows him")
    text = apps.text(alice, "robert")
    assert text.index("robert here, leaving soon") < text.index("hello, bob here") < text.index(
        "bob is now known as robert")
    labels = [alice.window.conversations.item(r).text()
              for r in range(alice.window.conversations.count())]
    assert sum(label.startswith("robert") for label in labels) == 1
