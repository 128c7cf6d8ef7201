"""Light and dark: the palette the window follows (the desktop's, or a chosen one) and its styles.

Every colour the window sets comes from the palette in use, so text is readable on whichever
background the desktop (or the theme choice) gives: nothing fixes a light background while the
text takes a dark desktop's light colour.
"""

from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication, QStyleFactory

from qtclient.qt import present
from qtclient.render import DARK, LIGHT, Colours

#: The choices in the preferences: follow the desktop, or always light, or always dark.
THEMES = ("system", "light", "dark")
_SYSTEM = "twistedchat_system_palette"
_STYLE = "twistedchat_system_style"

Role = QPalette.ColorRole
Group = QPalette.ColorGroup


def _palette(window: str, base: str, alternate: str, text: str, button: str, highlight: str,
             highlighted_text: str, disabled: str, link: str) -> QPalette:
    palette = QPalette()
    for role, colour in ((Role.Window, window), (Role.WindowText, text), (Role.Base, base),
                         (Role.AlternateBase, alternate), (Role.Text, text),
                         (Role.Button, button), (Role.ButtonText, text),
                         (Role.ToolTipBase, base), (Role.ToolTipText, text),
                         (Role.Highlight, highlight), (Role.HighlightedText, highlighted_text),
                         (Role.PlaceholderText, disabled), (Role.Link, link),
                         (Role.BrightText, "#ff5555")):
        palette.setColor(role, QColor(colour))
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        palette.setColor(Group.Disabled, role, QColor(disabled))
    return palette


def light_palette() -> QPalette:
    return _palette("#eff0f1", "#ffffff", "#f4f6f7", "#1b1f23", "#e3e5e8", "#3daee9", "#ffffff",
                    "#8c959f", "#1a5fb4")


def dark_palette() -> QPalette:
    """A dark palette like KDE Breeze Dark or GNOME's dark style."""
    return _palette("#2a2e32", "#1b1e20", "#232629", "#eff0f1", "#31363b", "#3daee9", "#fcfcfc",
                    "#7f8c8d", "#8ab4f8")


def is_dark(palette: QPalette) -> bool:
    """True when the palette draws text on a dark background."""
    return palette.color(Role.Base).lightness() < 128


def colours_for(palette: QPalette) -> Colours:
    """The line colours readable on this palette's background."""
    return DARK if is_dark(palette) else LIGHT


def apply_theme(name: str, app: QApplication | None = None) -> None:
    """Use the desktop's palette (``system``), or the light or the dark one, application-wide."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    assert app is not None
    if app.property(_SYSTEM) is None:
        app.setProperty(_SYSTEM, QPalette(app.palette()))
        app.setProperty(_STYLE, present(app.style()).name())
    if name == "system":
        if present(app.style()).name() != app.property(_STYLE):
            style = QStyleFactory.create(app.property(_STYLE) or "Fusion")
            if style is not None:
                app.setStyle(style)
        if app.palette() != app.property(_SYSTEM):
            app.setPalette(app.property(_SYSTEM))
        return
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}: choose one of {', '.join(THEMES)}")
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if name == "dark" else light_palette())


def stylesheet(palette: QPalette) -> str:
    """The window's styles, every colour taken from ``palette``."""
    side = palette.color(Role.AlternateBase).name()
    base = palette.color(Role.Base).name()
    text = palette.color(Role.Text).name()
    quiet = palette.color(Group.Disabled, Role.Text).name()
    line = palette.color(Role.Mid).name()
    selected = palette.color(Role.Highlight).name()
    selected_text = palette.color(Role.HighlightedText).name()
    return f"""
QListWidget {{ border: none; background: {side}; color: {text}; }}
QListWidget::item {{ padding: 4px 8px; }}
QListWidget::item:selected {{ background: {selected}; color: {selected_text}; }}
QTextBrowser {{ border: none; background: {base}; color: {text}; }}
QLabel#topic {{ border-bottom: 1px solid {line}; padding: 7px 8px; background: {base};
               color: {text}; font-weight: bold; }}
QLabel#heading {{ color: {quiet}; padding: 6px 8px 2px 8px; background: {side}; }}
QLabel#pending {{ color: {quiet}; padding: 0 8px; background: {base}; }}
"""
