"""Session lines as the HTML the message view shows: timestamps, coloured nicks, links, quiet events.

Pure functions over :class:`twistedchat.client.session.Line`; no widgets, so they are tested without Qt.
Colours come from a :class:`Colours` set: :data:`LIGHT` for light backgrounds, :data:`DARK` for dark.
mIRC formatting (bold, italic, underline, strikethrough, monospace, colours) is drawn.
"""

from __future__ import annotations

import html
import re
import zlib
from dataclasses import dataclass

from twistedchat.client.formatting import MIRC_COLOURS, Style, has_codes, parse, strip
from twistedchat.client.people import Person
from twistedchat.client.session import Kind, Line


@dataclass(frozen=True, slots=True)
class Colours:
    """The colours of lines on one kind of background; every one readable on it."""

    nicks: tuple[str, ...]
    time: str
    event: str
    error: str
    mention_background: str
    link: str
    #: the 16 mIRC colours as drawn on this background when a line gives no background of its
    #: own (white text on white, or navy on near-black, would be unreadable)
    mirc: tuple[str, ...] = MIRC_COLOURS


#: Readable on a light background, distinct from each other; a nick always gets the same one.
LIGHT = Colours(
    nicks=("#2874a6", "#c0392b", "#0e7c7f", "#1e8449", "#b8410a", "#3949ab", "#8e44ad", "#c2185b",
           "#6b6b00", "#a0522d", "#1a5276", "#8a6f00", "#5b2c6f", "#117a65", "#6d4c41", "#d04020"),
    time="#7f8c8d", event="#707b7c", error="#c0392b", mention_background="#fff3c4",
    link="#1a5fb4",
    mirc=("#5d6d7e", "#000000", "#00007f", "#007a00", "#e00000", "#7f0000", "#9c009c", "#a65300",
          "#7a6b00", "#1e7b1e", "#007a7a", "#007575", "#0000fc", "#c000c0", "#6b6b6b", "#5d5d5d"),
)
#: The same roles on a dark background: lighter, less saturated colours.
DARK = Colours(
    nicks=("#6cb4ee", "#f1948a", "#5fd3d6", "#7dcea0", "#f5b041", "#9fa8da", "#c39bd3", "#f48fb1",
           "#d4d46a", "#e0a47a", "#85c1e9", "#f7dc6f", "#bb8fce", "#4db6ac", "#bcaaa4", "#ff8a80"),
    time="#95a5a6", event="#aab7b8", error="#ff7b6b", mention_background="#5a4a16",
    link="#8ab4f8",
    mirc=("#ffffff", "#a0a0a0", "#7f9fff", "#4fd04f", "#ff5c5c", "#d97a7a", "#d070d0", "#fc9f40",
          "#ffff00", "#00fc00", "#40c8c8", "#00ffff", "#8080ff", "#ff70ff", "#a8a8a8", "#d2d2d2"),
)
NICK_COLOURS = LIGHT.nicks
TIME_COLOUR = LIGHT.time
EVENT_COLOUR = LIGHT.event
ERROR_COLOUR = LIGHT.error
MENTION_BACKGROUND = LIGHT.mention_background
#: How the time of a line is written unless the preferences say otherwise.
DEFAULT_TIME_FORMAT = "%H:%M"

_LINK_RE = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""

EVENT_MARKS = {
    Kind.JOIN: "→", Kind.PART: "←", Kind.QUIT: "←", Kind.KICK: "←", Kind.NICK: "•",
    Kind.TOPIC: "•", Kind.MODE: "•", Kind.INFO: "•", Kind.ERROR: "!",
}


def nick_colour(nick: str, colours: Colours = LIGHT) -> str:
    """The colour of ``nick``, stable across runs (a CRC, not Python's salted hash)."""
    return colours.nicks[zlib.crc32(nick.lower().encode("utf-8")) % len(colours.nicks)]


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


def tooltip(text: str) -> str:
    """Server-given ``text`` as a tooltip: always rich text, escaped, so a name or topic holding
    ``<b>`` or ``<img>`` is shown as typed and never interpreted."""
    return f"<p>{html.escape(strip(text))}</p>" if text else ""


def strip_formatting(text: str) -> str:
    return strip(text)


def _styled(run: str, style: Style, colours: Colours) -> str:
    """One run of text with its mIRC style as HTML."""
    body = linkify(run)
    if style.plain:
        return body
    css: list[str] = []
    fg, bg = style.foreground, style.background
    if style.reverse:
        fg, bg = (bg if bg is not None else 0), (fg if fg is not None else 1)
    if fg is not None:  # on the view's own background, a colour readable there
        css.append(f"color:{(MIRC_COLOURS if bg is not None else colours.mirc)[fg]}")
    if bg is not None:
        css.append(f"background-color:{MIRC_COLOURS[bg]}")
    if style.bold:
        css.append("font-weight:bold")
    if style.italic:
        css.append("font-style:italic")
    decorations = [name for name, on in (("underline", style.underline),
                                         ("line-through", style.strike)) if on]
    if decorations:
        css.append("text-decoration:" + " ".join(decorations))
    if style.monospace:
        css.append("font-family:monospace")
    return f'<span style="{";".join(css)}">{body}</span>'


def formatted(text: str, colours: Colours | None = None) -> str:
    """``text`` with its mIRC formatting drawn and its web addresses made links, escaped."""
    if not has_codes(text):
        return linkify(text)
    return "".join(_styled(run, style, colours or LIGHT) for run, style in parse(text))


def sender_html(nick: str, person: Person | None, colours: Colours) -> tuple[str, str]:
    """The sender as shown (the display name with the nick, when set) and a bot badge."""
    name = html.escape(person.label() if person is not None else nick)
    badge = f' <span style="color:{colours.event}">[bot]</span>' \
        if person is not None and person.bot else ""
    return name, badge


def line_html(line: Line, colours: Colours = LIGHT,
              time_format: str = DEFAULT_TIME_FORMAT, person: Person | None = None) -> str:
    """One line of the message view as an HTML fragment (``person``: what we know of the
    sender: display name, bot mode)."""
    when = line.time.strftime(time_format)
    if "<" in when or "&" in when:
        when = html.escape(when)
    stamp = f'<span style="color:{colours.time}">{when}</span>&nbsp; '

    if line.kind is Kind.HISTORY:
        return (f'<span style="color:{colours.event}">──────── {html.escape(line.text)} '
                "────────</span>")
    text = formatted(line.text, colours)
    if line.kind is Kind.MESSAGE or line.kind is Kind.NOTICE:
        colour = nick_colour(line.nick, colours)
        name, badge = sender_html(line.nick, person, colours)
        who = f"-{name}-" if line.kind is Kind.NOTICE else f"&lt;{name}&gt;"
        body = f'<b style="color:{colour}">{who}</b>{badge} {text}'
    elif line.kind is Kind.ACTION:
        colour = nick_colour(line.nick, colours)
        name, badge = sender_html(line.nick, person, colours)
        body = f'<i><span style="color:{colour}">* {name}</span>{badge} {text}</i>'
    else:
        colour = colours.error if line.kind is Kind.ERROR else colours.event
        mark = EVENT_MARKS.get(line.kind, "•")
        body = f'<span style="color:{colour}">{mark} {text}</span>'
    if line.mention:
        return f'<span style="background-color:{colours.mention_background}">{stamp}{body}</span>'
    return stamp + body


def pending_html(target: str, text: str, own_nick: str, shown_in_target: bool,
                 colours: Colours = LIGHT) -> str:
    """A line sent but not yet echoed by the server: greyed, in italics."""
    who = f"&lt;{html.escape(own_nick)}&gt;" if shown_in_target else \
        f"&gt;{html.escape(target)}&lt;"
    return (f'<span style="color:{colours.event}"><i>… {who} {html.escape(strip(text))}'
            "</i></span>")
