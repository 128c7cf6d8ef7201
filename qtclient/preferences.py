"""The preferences: font and size, timestamp format, theme, highlight words, notifications.

:class:`Preferences` is remembered in ``QSettings`` (group ``preferences``); the dialog edits a
copy and hands it back through :attr:`PreferencesDialog.changed` when OK is pressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from PyQt6.QtCore import QSettings, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFontComboBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qtclient.theme import THEMES

#: Timestamp formats offered (strftime); the first is the default.
TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%I:%M %p", "[%H:%M]")
THEME_LABELS = {"system": "Follow the desktop", "light": "Light", "dark": "Dark"}


def form_dialog(dialog: QDialog, form: QFormLayout, *extra: QWidget) -> None:
    """Lay out ``dialog``: the form, any ``extra`` widgets, then OK and Cancel."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    for widget in (*extra, buttons):
        layout.addWidget(widget)


@dataclass
class Preferences:
    """What the user chose; empty font family means the desktop's font."""

    font_family: str = ""
    font_size: int = 0
    time_format: str = TIME_FORMATS[0]
    theme: str = "system"
    highlights: list[str] = field(default_factory=list)
    notifications: bool = True

    def font(self, default: QFont) -> QFont:
        font = QFont(default)
        if self.font_family:
            font.setFamily(self.font_family)
        if self.font_size > 0:
            font.setPointSize(self.font_size)
        return font


def load_preferences(store: QSettings) -> Preferences:
    defaults = Preferences()
    store.beginGroup("preferences")
    try:
        size = store.value("font_size", 0)
        try:
            size = max(0, min(int(size), 72))
        except (TypeError, ValueError):
            size = 0
        theme = str(store.value("theme", defaults.theme))
        time_format = str(store.value("time_format", defaults.time_format))
        words = str(store.value("highlights", ""))
        return Preferences(
            font_family=str(store.value("font_family", "")),
            font_size=size,
            time_format=time_format if time_format in TIME_FORMATS else defaults.time_format,
            theme=theme if theme in THEMES else defaults.theme,
            highlights=[w.strip() for w in words.split(",") if w.strip()],
            notifications=str(store.value("notifications", "true")).lower() == "true",
        )
    finally:
        store.endGroup()


def save_preferences(store: QSettings, preferences: Preferences) -> None:
    store.beginGroup("preferences")
    store.setValue("font_family", preferences.font_family)
    store.setValue("font_size", preferences.font_size)
    store.setValue("time_format", preferences.time_format)
    store.setValue("theme", preferences.theme)
    store.setValue("highlights", ", ".join(preferences.highlights))
    store.setValue("notifications", "true" if preferences.notifications else "false")
    store.endGroup()
    store.sync()


class PreferencesDialog(QDialog):
    """Edits :class:`Preferences`; OK emits :attr:`changed` with the new ones."""

    changed = pyqtSignal(object)

    def __init__(self, current: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.font_family = QFontComboBox()
        if current.font_family:
            self.font_family.setCurrentFont(QFont(current.font_family))
        self.use_font = QCheckBox("Use this font (off: the desktop's)")
        self.use_font.setChecked(bool(current.font_family))
        self.font_size = QSpinBox()
        self.font_size.setRange(0, 72)
        self.font_size.setSpecialValueText("the desktop's")
        self.font_size.setValue(current.font_size)
        self.time_format = QComboBox()
        sample = datetime(2026, 1, 1, 14, 5, 9)
        for stamp in TIME_FORMATS:
            self.time_format.addItem(sample.strftime(stamp), stamp)
        self.time_format.setCurrentIndex(TIME_FORMATS.index(current.time_format))
        self.theme = QComboBox()
        for name in THEMES:
            self.theme.addItem(THEME_LABELS[name], name)
        self.theme.setCurrentIndex(THEMES.index(current.theme))
        self.highlights = QLineEdit(", ".join(current.highlights))
        self.highlights.setPlaceholderText("words that count as mentions, comma separated")
        self.notifications = QCheckBox("Notify me of mentions and private messages")
        self.notifications.setChecked(current.notifications)
        form = QFormLayout()
        form.addRow("Font", self.font_family)
        form.addRow("", self.use_font)
        form.addRow("Size", self.font_size)
        form.addRow("Time", self.time_format)
        form.addRow("Theme", self.theme)
        form.addRow("Highlight", self.highlights)
        form.addRow("", self.notifications)
        form_dialog(self, form)

    def values(self) -> Preferences:
        return Preferences(
            font_family=self.font_family.currentFont().family() if self.use_font.isChecked()
            else "",
            font_size=self.font_size.value(),
            time_format=self.time_format.currentData(),
            theme=self.theme.currentData(),
            highlights=[w.strip() for w in self.highlights.text().split(",") if w.strip()],
            notifications=self.notifications.isChecked(),
        )

    def accept(self) -> None:
        self.changed.emit(self.values())
        super().accept()
