"""mIRC text formatting (bold, italic, underline, colours...) parsed into styled runs; no I/O, no Qt.

The control codes are the de-facto ones every IRC client uses: ``\\x02`` bold, ``\\x1d`` italic,
``\\x1f`` underline, ``\\x1e`` strikethrough, ``\\x11`` monospace, ``\\x16`` reverse, ``\\x03NN[,MM]``
colour (a bare ``\\x03`` ends colours) and ``\\x0f`` resets everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

BOLD, ITALIC, UNDERLINE, STRIKE, MONOSPACE, REVERSE, COLOUR, RESET = (
    "\x02", "\x1d", "\x1f", "\x1e", "\x11", "\x16", "\x03", "\x0f")

#: The 16 standard mIRC colours (99 means "default"); numbers 16-98 are extended and shown as default.
MIRC_COLOURS = (
    "#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
    "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2",
)

_CODE_RE = re.compile(r"\x03(\d{1,2})?(?:,(\d{1,2}))?|[\x02\x0f\x11\x16\x1d\x1e\x1f]")
_TOGGLES = {BOLD: "bold", ITALIC: "italic", UNDERLINE: "underline", STRIKE: "strike",
            MONOSPACE: "monospace", REVERSE: "reverse"}


@dataclass(frozen=True, slots=True)
class Style:
    """How a run of text looks; colours are mIRC numbers (None: the view's default)."""

    bold: bool = False
    italic: bool = False
    underline: bool = False
    strike: bool = False
    monospace: bool = False
    reverse: bool = False
    foreground: int | None = None
    background: int | None = None

    @property
    def plain(self) -> bool:
        return self == PLAIN


PLAIN = Style()


def _colour(number: str | None) -> int | None:
    if number is None:
        return None
    value = int(number)
    return value if value < len(MIRC_COLOURS) else None


def parse(text: str) -> list[tuple[str, Style]]:
    """``text`` as (run, style) pairs with the control codes taken out; empty runs are dropped."""
    runs: list[tuple[str, Style]] = []
    style = PLAIN
    position = 0
    for match in _CODE_RE.finditer(text):
        if match.start() > position:
            runs.append((text[position:match.start()], style))
        position = match.end()
        code = match.group(0)[0]
        if code == RESET:
            style = PLAIN
        elif code == COLOUR:
            fg, bg = match.group(1), match.group(2)
            if fg is None:
                style = replace(style, foreground=None, background=None)
            else:
                style = replace(style, foreground=_colour(fg),
                                background=_colour(bg) if bg is not None else style.background)
        else:
            name = _TOGGLES[code]
            style = replace(style, **{name: not getattr(style, name)})
    if position < len(text):
        runs.append((text[position:], style))
    return runs


def has_codes(text: str) -> bool:
    """True if ``text`` holds any formatting code (most lines hold none)."""
    return _CODE_RE.search(text) is not None


def strip(text: str) -> str:
    """``text`` without formatting codes (colours with their numbers)."""
    return _CODE_RE.sub("", text)


#: What the input line inserts for Ctrl+B, Ctrl+I, Ctrl+U, Ctrl+K and Ctrl+O.
TYPING_CODES = {"B": BOLD, "I": ITALIC, "U": UNDERLINE, "K": COLOUR, "O": RESET}
