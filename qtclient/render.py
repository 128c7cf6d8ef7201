"""Session lines as the HTML the message view shows: timestamps, coloured nicks, links, quiet events.

Pure functions over :class:`twistedchat.client.session.Line`; no widgets, so they are tested without Qt.
"""

from __future__ import annotations

import html
import re
import zlib

from twistedchat.client.session import Kind, Line

#: Readable on a light background, distinct from each other; a nick always gets the same one.
NICK_COLOURS = (
    "#2e86c1", "#c0392b", "#138d90", "#229954", "#d35400", "#3949ab", "#8e44ad", "#c2185b",
    "#7d7d00", "#a0522d", "#1a5276", "#b7950b", "#5b2c6f", "#00897b", "#6d4c41", "#e74c3c",
)
TIME_COLOUR = "#95a5a6"
EVENT_COLOUR = "#7f8c8d"
ERROR_COLOUR = "#c0392b"
MENTION_BACKGROUND = "#fff3c4"

_LINK_RE = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
#: mIRC formatting codes are dropped from the text (colours with their numbers).
_FORMATTING_RE = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]")

EVENT_MARKS = {
    Kind.JOIN: "→", Kind.PART: "←", Kind.QUIT: "←", Kind.KICK: "←", Kind.NICK: "•",
    Kind.TOPIC: "•", Kind.MODE: "•", Kind.INFO: "•", Kind.ERROR: "!",
}


def nick_colour(nick: str) -> str:
    """The colour of ``nick``, stable across runs (a CRC, not Python's salted hash)."""
    return NICK_COLOURS[zlib.crc32(nick.lower().encode("utf-8")) % len(NICK_COLOURS)]


def linkify(text: str) -> str:
    """``text`` escaped for HTML, with web addresses made into links."""
    out: list[str] = []
    position = 0
    for match in _LINK_RE.finditer(text):
        url = match.group(0)
        trimmed = url.rstrip(_TRAILING)
        while url[len(trimmed):].startswith(")") and trimmed.count("(") > trimmed.count(")"):
            trimmed += ")"  # .../Foo_(bar) keeps its closing parenthesis
        end = match.start() + len(trimmed)
        out.append(html.escape(text[position:match.start()]))
        href = trimmed if "://" in trimmed else "http://" + trimmed
        out.append(f'<a href="{html.escape(href, quote=True)}">{html.escape(trimmed)}</a>')
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def strip_formatting(text: str) -> str:
    return _FORMATTING_RE.sub("", text)


def line_html(line: Line) -> str:
    """One line of the message view as an HTML fragment."""
    stamp = f'<span style="color:{TIME_COLOUR}">{line.time:%H:%M}</span>&nbsp; '
    text = linkify(strip_formatting(line.text))
    if line.kind is Kind.MESSAGE or line.kind is Kind.NOTICE:
        colour = nick_colour(line.nick)
        name = html.escape(line.nick)
        who = f"-{name}-" if line.kind is Kind.NOTICE else f"&lt;{name}&gt;"
        body = f'<b style="color:{colour}">{who}</b> {text}'
    elif line.kind is Kind.ACTION:
        colour = nick_colour(line.nick)
        body = (f'<i><span style="color:{colour}">* {html.escape(line.nick)}</span> '
                f"{text}</i>")
    else:
        colour = ERROR_COLOUR if line.kind is Kind.ERROR else EVENT_COLOUR
        mark = EVENT_MARKS.get(line.kind, "•")
        body = f'<span style="color:{colour}">{mark} {text}</span>'
    if line.mention:
        return f'<span style="background-color:{MENTION_BACKGROUND}">{stamp}{body}</span>'
    return stamp + body
