"""The desktop client's modern IRC through its widgets: account logins and creation from the connect
dialog, history above a marker and older history at the top (against a small scripted server
until the daemon has accounts and CHATHISTORY), presence, display names and bots (against the
daemon), passwords kept only in a keyring, and avatars fetched over HTTP."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
import pytest_twisted
from helpers import wait_until
from PyQt6.QtCore import QBuffer, QByteArray, QIODevice, QSettings
from PyQt6.QtGui import QColor, QImage
from test_qtclient import Apps
from twisted.internet import defer, endpoints, protocol
from twisted.protocols.basic import LineReceiver
from twisted.web import resource, server

from qtclient import secrets
from qtclient.app import ChatApp
from qtclient.avatars import MAX_AVATAR_BYTES, AvatarCache
from qtclient.dialog import ConnectDialog, ConnectSettings, load_settings
from twistedchat.client.history import HISTORY_MARKER, utc_stamp

FAST_RETRY = {"initial_delay": 0.1, "max_delay": 0.5}
NOW = datetime.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def homes(tmp_path, monkeypatch):
    """Logs and the avatar cache go to temp directories, never the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "client.ini"), QSettings.Format.IniFormat)


class FakeKeyring:
    """A keyring in memory (the system one is never touched by tests)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service, name):
        return self.items.get((service, name))

    def set_password(self, service, name, password):
        self.items[(service, name)] = password

    def delete_password(self, service, name):
        self.items.pop((service, name), None)


# -- a scripted server: SASL PLAIN, REGISTER, CHATHISTORY ------------------------------------------


class HistoryServerProtocol(LineReceiver):
    """Enough of an IRCv3 server for the client's accounts and history."""

    delimiter = b"\r\n"

    def connectionMade(self) -> None:
        self.nick = "*"
        self.negotiating = self.user_sent = False
        self.factory.connections.append(self)

    def send(self, line: str) -> None:
        self.sendLine(line.encode())

    def lineReceived(self, raw: bytes) -> None:
        line = raw.decode()
        self.factory.received.append(line)
        words = line.split(" ")
        verb = words[0]
        if verb == "CAP" and words[1] == "END":
            self.negotiating = False
            self.welcome()
        elif verb == "CAP" and words[1] == "LS":
            self.negotiating = True
            self.send(":fake CAP * LS :sasl=PLAIN batch draft/chathistory server-time "
                      "message-tags draft/account-registration=before-connect")
        elif verb == "CAP" and words[1] == "REQ":
            self.send(f":fake CAP * ACK :{line.split(':', 1)[1]}")
        elif verb == "NICK":
            self.nick = words[1]
        elif verb == "AUTHENTICATE" and words[1] == "PLAIN":
            self.send("AUTHENTICATE +")
        elif verb == "AUTHENTICATE":
            _, account, password = base64.b64decode(words[1]).decode().split("\0")
            if self.factory.accounts.get(account) == password:
                self.send(f":fake 900 {self.nick} {self.nick}!u@h {account} :Logged in")
                self.send(f":fake 903 {self.nick} :SASL authentication successful")
            else:
                self.send(f":fake 904 {self.nick} :SASL authentication failed")
        elif verb == "REGISTER":
            self.factory.accounts[words[1]] = line.split(":", 1)[1]
            self.send(f":fake REGISTER SUCCESS {words[1]} :Account created")
        elif verb == "USER":
            self.user_sent = True
            self.welcome()
        elif verb == "JOIN":
            self.send(f":{self.nick}!u@h JOIN {words[1]}")
            self.send(f":fake 366 {self.nick} {words[1]} :End of NAMES")
        elif verb == "CHATHISTORY":
            self.history(words[1], words[2], words[3])

    def welcome(self) -> None:
        """Registration ends with USER once capability negotiation is over."""
        if self.user_sent and not self.negotiating:
            self.send(f":fake 001 {self.nick} :Welcome")
            self.send(f":fake 376 {self.nick} :End of MOTD")

    def history(self, how: str, target: str, selector: str) -> None:
        lines = self.factory.history
        if how == "BEFORE":
            msgid = selector.split("=", 1)[1]
            index = next(i for i, entry in enumerate(lines) if entry[0] == msgid)
            page = lines[max(0, index - 50):index]
        else:
            page = lines[-50:]
        ref = f"b{len(self.factory.received)}"
        self.send(f":fake BATCH +{ref} chathistory {target}")
        for msgid, when, text in page:
            self.send(f"@batch={ref};msgid={msgid};time={utc_stamp(when)} :bob!b@h PRIVMSG "
                      f"{target} :{text}")
        self.send(f":fake BATCH -{ref}")


class HistoryServer(protocol.ServerFactory):
    protocol = HistoryServerProtocol

    def __init__(self) -> None:
        self.connections: list[HistoryServerProtocol] = []
        self.received: list[str] = []
        self.accounts = {"ada": "analytical"}
        self.history = [(f"m{n}", NOW - timedelta(minutes=200 - n), f"old line {n}")
                        for n in range(120)]


@pytest_twisted.async_yield_fixture
async def fake_server():
    from twisted.internet import reactor

    factory = HistoryServer()
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    factory.port = port.getHost().port
    yield factory
    for connection in factory.connections:
        connection.transport.abortConnection()
    await port.stopListening()


async def start_app(store, settings: ConnectSettings) -> ChatApp:
    from twisted.internet import reactor

    app = ChatApp(reactor, settings, store, connect_now=False, link_options=FAST_RETRY)
    app.start()
    dialog = app.dialog
    dialog.set_values(settings)
    dialog.account_password.setText(settings.account_password)
    dialog.create_account.setChecked(settings.create_account)
    dialog.request_join()
    return app


@pytest_twisted.ensureDeferred
async def test_the_dialog_logs_in_with_an_account_and_history_comes_above_the_marker(
        fake_server, store, qtbot):
    settings = ConnectSettings(host="127.0.0.1", port=fake_server.port, nick="ada",
                               channel="#c", account="ada", account_password="analytical")
    app = await start_app(store, settings)
    try:
        await wait_until(lambda: app.window is not None, "the window opens")
        assert "AUTHENTICATE PLAIN" in fake_server.received
        assert app.link.client.account == "ada"
        channel = await wait_until(lambda: app.session.find("#c"), "#c opens")
        await wait_until(lambda: any(line.text == HISTORY_MARKER for line in channel.lines),
                         "history arrives")
        app.window.show_conversation("#c")
        app.window.flush()
        text = app.window.views[id(channel)].toPlainText()
        assert text.index("old line 119") < text.index(HISTORY_MARKER) < text.index("You joined")
        assert "old line 69" not in text
        # scrolling to the top fetches the 50 before
        view = app.window.views[id(channel)]
        view.on_top()
        await wait_until(lambda: "old line 69" in view.toPlainText(), "older history")
        assert "CHATHISTORY BEFORE #c msgid=m70 50" in fake_server.received
        older = view.toPlainText()
        assert older.count("old line 100") == 1
        assert older.index("old line 20") < older.index("old line 69") < older.index(
            "old line 70") < older.index(HISTORY_MARKER) < older.index("You joined")
        assert older.splitlines()[0].endswith("old line 20")
        # the password never reaches QSettings
        store.sync()
        assert "analytical" not in open(store.fileName()).read()
    finally:
        await app.quit()
        app.dialog.close()


@pytest_twisted.ensureDeferred
async def test_a_wrong_account_password_is_said_in_the_dialog(fake_server, store, qtbot):
    settings = ConnectSettings(host="127.0.0.1", port=fake_server.port, nick="ada",
                               channel="", account="ada", account_password="babbage")
    app = await start_app(store, settings)
    try:
        await wait_until(lambda: "refused the account login" in app.dialog.error.text(),
                         "the dialog says the login failed")
        assert app.window is None
    finally:
        await app.quit()
        app.dialog.close()


@pytest_twisted.ensureDeferred
async def test_the_dialog_creates_an_account(fake_server, store, qtbot):
    settings = ConnectSettings(host="127.0.0.1", port=fake_server.port, nick="grace",
                               channel="", account="grace", account_password="cobol",
                               create_account=True)
    app = await start_app(store, settings)
    try:
        await wait_until(lambda: app.window is not None, "the window opens")
        assert "REGISTER grace * :cobol" in fake_server.received
        assert fake_server.accounts["grace"] == "cobol"
    finally:
        await app.quit()
        app.dialog.close()


def test_passwords_go_to_the_keyring_only_when_asked_and_never_without_one(
        store, qtbot, monkeypatch):
    from qtclient.dialog import save_settings

    monkeypatch.setattr(secrets, "keyring_module", None)
    monkeypatch.setattr(secrets, "_backend", lambda: None)
    dialog = ConnectDialog(ConnectSettings(account="ada", account_password="x"))
    qtbot.addWidget(dialog)
    assert not dialog.remember.isEnabled()
    save_settings(store, ConnectSettings(nick="ada", account="ada", account_password="pw",
                                         remember_password=True))
    store.sync()
    assert "pw" not in open(store.fileName()).read().replace("port", "")
    assert load_settings(store).remember_password is False

    keyring = FakeKeyring()
    monkeypatch.setattr(secrets, "keyring_module", keyring)
    save_settings(store, ConnectSettings(nick="ada", account="ada", account_password="s3cret",
                                         remember_password=True))
    store.sync()
    assert "s3cret" not in open(store.fileName()).read()
    assert list(keyring.items.values()) == ["s3cret"]
    restored = load_settings(store)
    assert restored.account == "ada" and restored.account_password == "s3cret"
    save_settings(store, ConnectSettings(nick="ada", account="ada", account_password="s3cret"))
    assert keyring.items == {}  # unticked: forgotten


# -- presence, display names and bots against the daemon -------------------------------------------


@pytest_twisted.async_yield_fixture
async def apps(chat_server, store):
    kept = Apps(chat_server, store)
    yield kept
    await kept.close_all()


@pytest_twisted.ensureDeferred
async def test_a_private_conversation_shows_presence_display_name_and_bot_badge(apps, qtbot):
    ann = await apps.connected("ann")
    bob = await apps.connected("bob")
    window = ann.window
    window.run("/query bob")
    topic = window.topic
    await wait_until(lambda: "online" in topic.text(), "bob shows online")
    bob.link.send_input("/away lunch")
    await wait_until(lambda: "away" in topic.text(), "bob shows away")
    bob.link.send_input("/raw METADATA * SET display-name :Robert Tables")
    await wait_until(lambda: "Robert Tables (bob)" in topic.text(), "the display name")
    bob.link.send_input("/raw MODE bob +B")
    bob.link.send_input("/msg ann beep")
    query = ann.session.find("bob")
    await wait_until(lambda: "beep" in apps.text(ann, "bob"), "bob's message")
    shown = apps.text(ann, "bob")
    assert "<Robert Tables (bob)> [bot] beep" in shown
    assert "(bot)" in topic.text()
    await bob.quit()
    await wait_until(lambda: "offline" in topic.text(), "bob shows offline")
    assert query is ann.session.find("bob")


# -- avatars ---------------------------------------------------------------------------------------


def png_bytes(size: int = 100) -> bytes:
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor("#336699"))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


class Avatars(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[bytes] = []

    def render_GET(self, request):
        self.hits.append(request.path)
        if request.path == b"/ok.png":
            return png_bytes()
        if request.path == b"/huge.png":
            return b"\0" * (MAX_AVATAR_BYTES + 10)
        return b"<html>not an image</html>"


@pytest_twisted.ensureDeferred
async def test_avatars_are_fetched_capped_checked_and_cached(tmp_path, qtbot):
    from twisted.internet import reactor

    site = Avatars()
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        server.Site(site))
    base = f"http://127.0.0.1:{port.getHost().port}"
    ready: list[str] = []
    cache = AvatarCache(reactor, ready.append, directory=tmp_path / "avatars")
    try:
        assert cache.image_html(f"{base}/ok.png") == ""  # not yet: fetching, never waiting
        await wait_until(lambda: ready, "the avatar arrives")
        html = cache.image_html(f"{base}/ok.png")
        assert "<img" in html and (tmp_path / "avatars").exists()
        assert QImage(str(cache.path_for(f"{base}/ok.png"))).width() == 64
        for bad in ("huge.png", "page.html"):
            result = await cache.fetch(f"{base}/{bad}")
            assert result is None and cache.image_html(f"{base}/{bad}") == ""
        assert cache.image_html("file:///etc/passwd") == ""
        hits = len(site.hits)
        cache.image_html(f"{base}/ok.png")
        again = AvatarCache(reactor, directory=tmp_path / "avatars")
        assert "<img" in again.image_html(f"{base}/ok.png")  # from the disk cache
        assert len(site.hits) == hits
    finally:
        await port.stopListening()
        await defer.succeed(None)


def test_history_is_drawn_a_chunk_per_turn_like_a_burst(qtbot):
    from twisted.internet import reactor

    from qtclient.drawing import FLUSH_CHUNK
    from qtclient.window import MainWindow
    from twistedchat.client.link import SessionLink
    from twistedchat.client.session import Kind, Line, Session

    session = Session("me")
    window = MainWindow(session, SessionLink(reactor, session, "localhost", 1))
    qtbot.addWidget(window)
    channel = session.open("#c")
    window.flush()
    channel.history_request = "latest"
    session.on_history("#c", [Line(NOW - timedelta(seconds=2000 - n), Kind.MESSAGE, f"h{n}",
                                   "bob", msgid=f"m{n}") for n in range(1500)])
    view = window.views[id(channel)]
    window._flush()  # one event-loop turn
    assert 0 < view.document().blockCount() <= FLUSH_CHUNK
    window.flush()
    text = view.toPlainText()
    assert text.index("h1499") < text.index(HISTORY_MARKER) and "h0" in text


def test_server_list_entries_keep_the_account_and_its_password_only_in_the_keyring(
        store, monkeypatch):
    from qtclient.servers import ServerEntry, load_servers, save_servers

    keyring = FakeKeyring()
    monkeypatch.setattr(secrets, "keyring_module", keyring)
    entries = [ServerEntry(name="home", host="chat.example.org", nick="ada", account="ada",
                           account_password="hunter2!", remember_password=True),
               ServerEntry(name="work", host="irc.example.com", nick="ada", account="ada",
                           account_password="typed-only")]
    save_servers(store, entries)
    store.sync()
    written = open(store.fileName()).read()
    assert "hunter2!" not in written and "typed-only" not in written
    assert list(keyring.items.values()) == ["hunter2!"]
    home, work = load_servers(store)
    assert (home.account, home.account_password) == ("ada", "hunter2!")
    assert (work.account, work.account_password) == ("ada", "")
    assert home.settings().account_password == "hunter2!"
