"""Test setup: the whole suite runs on Twisted's Qt reactor, so Qt and network tests share one loop.

pytest-twisted has no Qt 6 choice for ``--reactor``; we make the QApplication (offscreen) and install
``qreactor`` ourselves as its default installer.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyqt6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import pytest_twisted  # noqa: E402
from hypothesis import settings  # noqa: E402

# The machines are shared and noisy: hypothesis's per-example deadline would measure the machine's
# load, not the code, so it is off (no test here asserts a timing).
# Under CI the examples are derandomized (the same every run) and no example database is kept, so a
# red CI run is a real regression, never a draw; locally hypothesis explores and remembers.
settings.register_profile(
    "twistedchat", deadline=None,
    **({"derandomize": True, "database": None} if os.environ.get("CI") else {}),
)
settings.load_profile("twistedchat")


def _install_qt_reactor() -> None:
    import qreactor
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["twistedchat-tests"])
    _install_qt_reactor.app = app  # keep a reference for the life of the session
    pytest_twisted._install_reactor(
        reactor_installer=qreactor.install, reactor_type=qreactor.QtReactor
    )


pytest_twisted.reactor_installers["default"] = _install_qt_reactor


# The daemon in this process on a loopback port that survives stop()/start(); the bot test kit
# ships it (twistedchat.bot.testing), so bot authors' tests and ours share one.
from twistedchat.bot.testing import ChatDaemon as RunningServer  # noqa: E402


@pytest_twisted.async_yield_fixture
async def chat_server():
    """The real daemon on 127.0.0.1, an ephemeral port, server name ``test.server``; hosts shown
    as they are (cloaks have their own tests in test_admin_net.py)."""
    from twistedchat.server.config import ServerConfig

    server = RunningServer(ServerConfig(name="test.server", network="TestNet", cloak_hosts=False))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
def _in_a_temporary_directory(tmp_path, monkeypatch):
    """Every test runs in its own directory: what a daemon or bot keeps by default (the
    daemon's ``twistedchat.sqlite3``, a bot's database) lands there, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock():
    """A clock the test moves by hand (for tests of the sans-IO core)."""
    from core_peers import FakeClock

    return FakeClock()


@pytest.fixture
def core(clock):
    """A sans-IO core named ``irc.test`` on that clock (see ``core_peers.make_core``)."""
    from core_peers import make_core

    return make_core(clock)


@pytest.fixture
def log_events():
    """Every log event emitted during the test."""
    from twisted.logger import globalLogPublisher

    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)
