"""Desktop notifications: a tray icon message and the taskbar alert."""

from __future__ import annotations

from collections import deque

from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import QApplication, QStyle, QSystemTrayIcon, QWidget

#: Longest text shown in a notification bubble.
PREVIEW_CHARS = 200


class Notifier:
    """Tells the user someone wants them while they look elsewhere.

    Shows a tray message where the desktop has a system tray, and always asks the window manager
    to flag the window (``QApplication.alert``). :attr:`shown` keeps the latest notifications.
    """

    def __init__(self, window: QWidget) -> None:
        self.window = window
        self.shown: deque[tuple[str, str]] = deque(maxlen=50)
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            style = window.style()
            assert style is not None, "a widget always has a style"
            icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation)
            self.tray = QSystemTrayIcon(QIcon(icon), window)
            self.tray.setToolTip("twistedchat")
            self.tray.activated.connect(self._bring_back)
            self.tray.show()

    def notify(self, title: str, text: str) -> None:
        if len(text) > PREVIEW_CHARS:
            text = text[: PREVIEW_CHARS - 1] + "…"
        self.shown.append((title, text))
        if self.tray is not None:
            self.tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 8000)
        QApplication.alert(self.window, 0)

    def _bring_back(self, _reason: object) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()
