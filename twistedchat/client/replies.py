"""Server numeric replies in words a person reads: WHOIS, LUSERS, LIST, errors; no I/O.

:func:`describe` turns one numeric's params into a :class:`Reply` (its text, where it belongs and
whether it is an error) or None for replies that carry nothing worth a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Place(Enum):
    """Where a reply line goes."""

    SERVER = "server"  # the server conversation (welcome, MOTD, LUSERS)
    ACTIVE = "active"  # where the user looks: the answer to what they just asked
    TARGET = "target"  # the conversation of the nick or channel the reply names, else ACTIVE


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    place: Place = Place.SERVER
    error: bool = False
    #: the nick or channel the reply is about (for Place.TARGET)
    target: str = ""


#: Numerics that answer a question the user asked (WHOIS, AWAY, INVITE, LIST...).
ANSWERS = {"301", "305", "306", "311", "312", "313", "314", "317", "318", "319", "330", "338",
           "341", "369", "378", "671", "221", "324", "329", "331", "367", "368", "391", "351"}
#: Numerics the session shows in its own way, or that only carry machine-readable data.
QUIET = {"004", "005", "332", "333", "353", "366", "321", "322", "323", "318", "369", "315",
         "329"}
#: Errors that are no error to the user: shown quietly in the server conversation.
HARMLESS = {"422"}  # "MOTD File is missing"
#: Errors about a named nick or channel (the second param): shown in its conversation if open.
ABOUT_TARGET = {"401", "403", "404", "406", "441", "442", "443", "467", "471", "473", "474",
                "475", "477", "479", "482"}


def _when(stamp: str) -> str:
    try:
        return datetime.fromtimestamp(int(stamp)).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return stamp


def _duration(seconds: str) -> str:
    try:
        value = int(seconds)
    except ValueError:
        return seconds
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _whois(numeric: str, words: list[str]) -> str | None:
    """WHOIS lines as sentences; None when the shape is not the usual one."""
    if numeric == "311" and len(words) >= 5:
        return f"{words[0]} is {words[1]}@{words[2]} ({words[-1]})"
    if numeric == "312" and len(words) >= 3:
        return f"{words[0]} is connected to {words[1]} ({words[2]})"
    if numeric == "313" and len(words) >= 2:
        return f"{words[0]} is a server operator"
    if numeric == "317" and len(words) >= 3:
        text = f"{words[0]} has been idle {_duration(words[1])}"
        if len(words) >= 4 and words[2].isdigit():
            text += f", signed on {_when(words[2])}"
        return text
    if numeric == "319" and len(words) >= 2:
        return f"{words[0]} is on {words[-1]}"
    if numeric == "330" and len(words) >= 3:
        return f"{words[0]} is logged in as {words[1]}"
    if numeric == "671" and len(words) >= 2:
        return f"{words[0]} is using a secure connection"
    if numeric == "301" and len(words) >= 2:
        return f"{words[0]} is away: {words[-1]}"
    if numeric == "314" and len(words) >= 5:
        return f"{words[0]} was {words[1]}@{words[2]} ({words[-1]})"
    return None


def numeric_text(words: list[str]) -> str:
    """A numeric's params (our nick dropped) as one line: numbers the text repeats are left out."""
    if not words:
        return ""
    head, last = words[:-1], words[-1]
    head = [word for word in head if not (word.isdigit() and word in last)]
    return f"{' '.join(head)}: {last}" if head else last


def describe(numeric: str, params: list[str]) -> Reply | None:
    """What to show for ``numeric`` with ``params`` (the first being our nick), or None."""
    words = params[1:]
    if numeric in QUIET or not words:
        return None
    if numeric in HARMLESS:
        return Reply(words[-1])
    whois = _whois(numeric, words)
    if whois is not None:
        return Reply(whois, Place.TARGET if numeric == "301" else Place.ACTIVE, target=words[0])
    if numeric == "341" and len(words) >= 2:
        return Reply(f"Invited {words[0]} to {words[1]}", Place.TARGET, target=words[1])
    if numeric == "329" and len(words) >= 2:
        return Reply(f"{words[0]} was created {_when(words[1])}", Place.TARGET, target=words[0])
    text = numeric_text(words)
    if numeric[0] in "45":
        if numeric in ABOUT_TARGET and len(words) >= 2:
            return Reply(text, Place.TARGET, error=True, target=words[0])
        return Reply(text, Place.ACTIVE, error=True)
    if numeric in ANSWERS:
        return Reply(text, Place.ACTIVE)
    return Reply(text)
