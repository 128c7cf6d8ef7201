"""Test setup: the whole suite runs on Twisted's Qt reactor, so Qt and network tests share one loop.

pytest-twisted has no Qt 6 choice for ``--reactor``; we make the QApplication (offscreen) and install
``qreactor`` ourselves as its default installer.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyqt6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest_twisted  # noqa: E402


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
    """The real daemon on 127.0.0.1, an ephemeral port, server name ``test.server``."""
    from twistedchat.server.config import ServerConfig

    server = RunningServer(ServerConfig(name="test.server", network="TestNet"))
    await server.start()
    yield server
    await server.stop()
