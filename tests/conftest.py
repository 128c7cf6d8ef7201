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
    from PyQt6.QtWidgets import QApplication

    import qreactor

    app = QApplication.instance() or QApplication(["twistedchat-tests"])
    _install_qt_reactor.app = app  # keep a reference for the life of the session
    pytest_twisted._install_reactor(
        reactor_installer=qreactor.install, reactor_type=qreactor.QtReactor
    )


pytest_twisted.reactor_installers["default"] = _install_qt_reactor
