"""The desktop client against the daemon with accounts and history: create an account from the
connect dialog, log in with SCRAM-SHA-256 from another client, and find the channel's earlier
messages above the history marker, older ones fetched at the top."""

from __future__ import annotations

import pytest
import pytest_twisted
from helpers import wait_until
from PyQt6.QtCore import QSettings

pytest.importorskip("twistedchat.server.accounts",
                    reason="the daemon's accounts and CHATHISTORY come with the accounts branch")

from test_accounts_daemon import Daemon  # noqa: E402

from qtclient.app import ChatApp  # noqa: E402
from qtclient.dialog import ConnectSettings  # noqa: E402
from twistedchat.client import history  # noqa: E402
from twistedchat.client.history import HISTORY_MARKER  # noqa: E402

FAST_RETRY = {"initial_delay": 0.1, "max_delay": 0.5}


@pytest.fixture(autouse=True)
def homes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest_twisted.async_yield_fixture
async def daemon(tmp_path):
    running = Daemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await running.start()
    yield running
    await running.stop()


async def open_app(daemon, tmp_path, name: str, settings: ConnectSettings) -> ChatApp:
    from twisted.internet import reactor

    store = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
    port = int(daemon.client_endpoint.rsplit(":", 1)[1])
    settings.host, settings.port = "127.0.0.1", port
    app = ChatApp(reactor, settings, store, connect_now=False, link_options=FAST_RETRY)
    app.start()
    app.dialog.set_values(settings)
    app.dialog.create_account.setChecked(settings.create_account)
    app.dialog.request_join()
    await wait_until(lambda: app.window is not None or app.dialog.error.isVisible()
                     and "Connecting" not in app.dialog.error.text(), f"{name} connects")
    assert app.window is not None, app.dialog.error.text()
    return app


@pytest_twisted.ensureDeferred
async def test_create_an_account_then_log_in_and_read_the_channels_history(
        daemon, tmp_path, qtbot, monkeypatch):
    monkeypatch.setattr(history, "HISTORY_PAGE", 10)  # fewer lines than the flood limit
    ada = await open_app(daemon, tmp_path, "ada", ConnectSettings(
        nick="ada", channel="#c", account="ada", account_password="analytical engine",
        create_account=True))
    apps = [ada]
    try:
        assert ada.link.client.account == "ada"
        await wait_until(lambda: ada.session.find("#c") and ada.session.find("#c").joined,
                         "ada joins #c")
        for n in range(18):
            ada.link.client.sendLine(f"PRIVMSG #c :note {n}")
        await wait_until(lambda: any(line.text == "note 17" for line in
                                     ada.session.find("#c").lines), "ada's notes echo")
        # another computer: no logs of its own yet, so everything it shows comes from the server
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "other-data"))
        bob = await open_app(daemon, tmp_path, "bob", ConnectSettings(
            nick="ada2", channel="#c", account="ada", account_password="analytical engine"))
        apps.append(bob)
        assert "sasl" in bob.link.client.enabled_caps and bob.link.client.account == "ada"
        channel = await wait_until(lambda: bob.session.find("#c"), "#c opens")
        await wait_until(lambda: any(line.text == HISTORY_MARKER for line in channel.lines),
                         "history above the marker")
        bob.window.show_conversation("#c")
        bob.window.flush()
        view = bob.window.views[id(channel)]
        text = view.toPlainText()
        assert text.index("note 17") < text.index(HISTORY_MARKER)
        assert "note 29" not in text
        view.on_top()
        await wait_until(lambda: "note 0" in view.toPlainText(), "older history")
        assert view.toPlainText().count("note 8") == 1
    finally:
        for app in apps:
            await app.quit()
            app.dialog.close()
