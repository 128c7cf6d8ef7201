"""The window's menus and keys: the Chat menu, conversation switching and search.

Alt+1…9 pick a conversation by its place in the list; Ctrl+Tab / Ctrl+Shift+Tab, Alt+Right /
Alt+Left and Ctrl+PgDown / Ctrl+PgUp step through them; Ctrl+F searches; Ctrl+J joins, Ctrl+W
closes, Ctrl+L lists channels, Ctrl+, opens the preferences, Ctrl+Q quits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence, QShortcut


def install(window: Any) -> None:
    """The Chat menu and the switching keys of ``window`` (a :class:`MainWindow`)."""
    menu = window.menuBar().addMenu("&Chat")
    actions: list[tuple[str, str | list[str], Callable[[], Any]]] = [
        ("&Join a channel…", "Ctrl+J", lambda: window.prefill("/join #")),
        ("&Channel list", "Ctrl+L", lambda: window.run("/list")),
        ("&Find…", "Ctrl+F", window.search.open_bar),
        ("&Close conversation", "Ctrl+W", lambda: window.run("/close")),
        ("&Next conversation", ["Ctrl+PgDown", "Ctrl+Tab", "Alt+Right"], lambda: window.step(1)),
        ("&Previous conversation", ["Ctrl+PgUp", "Ctrl+Shift+Tab", "Ctrl+Backtab", "Alt+Left"],
         lambda: window.step(-1)),
        ("&Servers…", "Ctrl+Shift+S", window.show_servers),
        ("P&references…", "Ctrl+,", window.open_preferences),
        ("&Quit", "Ctrl+Q", window.close),
    ]
    for text, keys, slot in actions:
        action = QAction(text, window)
        sequences = [QKeySequence(k) for k in ([keys] if isinstance(keys, str) else keys)]
        action.setShortcuts(sequences)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
    for number in range(1, 10):
        shortcut = QShortcut(QKeySequence(f"Alt+{number}"), window)
        shortcut.activated.connect(lambda n=number: window.select_row(n - 1))
