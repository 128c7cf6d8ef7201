"""How the window looks: preferences (font, time format, highlights) and the palette's colours.

When the palette changes (the desktop switches to dark, or the theme is chosen) every view is
drawn again in colours readable on it. A mixin of :class:`qtclient.window.MainWindow`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PyQt6.QtCore import QEvent
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QApplication, QWidget

from qtclient.preferences import Preferences, PreferencesDialog
from qtclient.theme import colours_for, stylesheet


class WindowLook:
    """Preferences and restyling of :class:`MainWindow`."""

    preferences: Preferences
    on_preferences: Any
    networks: list[Any]
    views: dict[int, Any]
    conversations: Any
    member_pane: Any
    colours: Any
    session: Any
    _restyling: bool
    current: Any
    redraw: Any
    _show_topic: Any
    palette: Any
    setStyleSheet: Any

    def open_preferences(self) -> PreferencesDialog:
        assert isinstance(self, QWidget), "mixed into the main window"
        dialog = PreferencesDialog(self.preferences, self)
        dialog.changed.connect(self._preferences_changed)
        dialog.open()
        return dialog

    def _preferences_changed(self, preferences: Preferences) -> None:
        if self.on_preferences is not None:
            self.on_preferences(preferences)  # the app remembers them and applies the theme
        self.apply_preferences(preferences)

    def apply_preferences(self, preferences: Preferences) -> None:
        """Font, time format and highlight words take effect at once; every view is redrawn."""
        self.preferences = preferences
        for network in self.networks:
            network.session.set_highlights(preferences.highlights)
        font = preferences.font(QApplication.font())
        for view in self.views.values():
            view.setFont(font)
        self._restyle()

    def _time_sample(self) -> str:
        return datetime(2000, 1, 1, 20, 59, 59).strftime(self.preferences.time_format)

    def _restyle(self) -> None:
        """Colours follow the palette (the desktop's, or the theme chosen): redraw everything."""
        if self._restyling:
            return
        self._restyling = True
        try:
            self._restyle_now()
        finally:
            self._restyling = False

    def _restyle_now(self) -> None:
        palette = QApplication.palette()
        self.colours = colours_for(palette)
        self.setStyleSheet(stylesheet(palette))
        self.conversations.mention_colour = QColor(self.colours.error)
        for conversation in [c for n in self.networks for c in n.session.conversations.values()]:
            view = self.views.get(id(conversation))
            if view is not None:
                view.setFont(self.preferences.font(QApplication.font()))
                view.set_indent_sample(self._time_sample())
                view.marker_colour = self.colours.error
                self.redraw(conversation)
        current = self.current()
        if current is not None:
            self._show_topic(current)
            self.member_pane.show_members(current, self.session.prefixes, self.session.people)

    def changeEvent(self, event: QEvent | None) -> None:
        super().changeEvent(event)  # type: ignore[misc]  # QMainWindow's, after this mixin in the MRO
        if event is not None and event.type() == QEvent.Type.PaletteChange and hasattr(self, "member_pane"):
            self._restyle()

