"""The IRC wire format: one line in, one :class:`Message` out, and back.

Pure functions, no I/O. Follows the modern IRC client protocol and the IRCv3 message-tags
specification: ``[@tags] [:source] COMMAND [params...] [:trailing]``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_TAGS_BYTES",
    "Message",
    "ParseError",
    "escape_tag_value",
    "format_tags",
    "parse",
    "unescape_tag_value",
    "valid_tag_key",
]

#: Longest line without tags, CR LF included (RFC 1459).
MAX_LINE_BYTES = 512
#: Extra room a client may use for its tags (IRCv3 message-tags: 4096 including ``@`` and space).
MAX_TAGS_BYTES = 4096

_TAG_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


#: A tag key as IRCv3 message-tags defines it: ``[+][vendor/]name``, the name ASCII letters, digits
#: and hyphens, the vendor a host name (labels of the same characters joined by dots).
_TAG_KEY = re.compile(r"\+?(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*/)?[A-Za-z0-9-]+\Z")


class ParseError(ValueError):
    """A line that is not a valid IRC message."""


def valid_tag_key(key: str) -> bool:
    """Whether ``key`` is a tag key under the IRCv3 message-tags grammar."""
    return _TAG_KEY.match(key) is not None


def escape_tag_value(value: str) -> str:
    """Escape a tag value for the wire (IRCv3 message-tags)."""
    if not any(ch in value for ch in _TAG_ESCAPES):
        return value
    return "".join(_TAG_ESCAPES.get(ch, ch) for ch in value)


def unescape_tag_value(raw: str) -> str:
    """Undo :func:`escape_tag_value`; an unknown escape drops the backslash, a trailing one is dropped."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    chars = iter(raw)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(_TAG_UNESCAPES.get(nxt, nxt))
        else:
            out.append(ch)
    return "".join(out)


def format_tags(tags: dict[str, str]) -> str:
    """``@key=value;flag`` for a non-empty tag dict."""
    return "@" + ";".join(
        f"{key}={escape_tag_value(value)}" if value else key for key, value in tags.items()
    )


#: ``slots=True`` where dataclasses have it (3.10+); the daemon also runs on PyPy 3.9 (bench/).
_SLOTS: dict[str, bool] = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclass(frozen=True, **_SLOTS)
class Message:
    """One IRC message. ``params`` holds every parameter, the trailing one included."""

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict, compare=True, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.params, tuple):
            object.__setattr__(self, "params", tuple(self.params))

    def to_line(self) -> str:
        """Format without the line ending; the last parameter is sent as trailing when it must be."""
        parts: list[str] = []
        if self.tags:
            parts.append(format_tags(self.tags))
        if self.source:
            parts.append(":" + self.source)
        parts.append(self.command)
        if self.params:
            *middle, last = self.params
            for param in middle:
                if not param or " " in param or param.startswith(":"):
                    raise ValueError(f"middle parameter {param!r} cannot be sent")
                parts.append(param)
            if not last or " " in last or last.startswith(":"):
                parts.append(":" + last)
            else:
                parts.append(last)
        line = " ".join(parts)
        if "\r" in line or "\n" in line or "\0" in line:
            raise ValueError("a message cannot contain CR, LF or NUL")
        return line

    def to_bytes(self) -> bytes:
        """Format as UTF-8 with CR LF, ready to write."""
        return self.to_line().encode("utf-8") + b"\r\n"

    @property
    def nick(self) -> str | None:
        """The nickname part of the source, if any."""
        if self.source is None:
            return None
        return self.source.split("!", 1)[0].split("@", 1)[0]


def parse(line: bytes | str) -> Message:
    """Parse one line (with or without its CR LF) into a :class:`Message`.

    Raises :class:`ParseError` for an empty line, one without a command, or one with CR, LF or NUL
    inside it (nothing parsed can carry them into stored state or another user's line), and
    :class:`UnicodeDecodeError` (a ``ValueError``) for bytes that are not UTF-8. Tags whose key
    the IRCv3 message-tags grammar does not allow are dropped.
    """
    text = line.decode("utf-8") if isinstance(line, bytes) else line
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if "\0" in text:
        raise ParseError("NUL is not allowed in a line")
    if "\r" in text or "\n" in text:
        raise ParseError("CR and LF are not allowed inside a line")
    tags: dict[str, str] = {}
    pos = 0
    length = len(text)
    if text.startswith("@"):
        end = text.find(" ")
        if end == -1:
            raise ParseError("tags without a command")
        for item in text[1:end].split(";"):
            if not item:
                continue
            key, _, value = item.partition("=")
            if _TAG_KEY.match(key):
                tags[key] = unescape_tag_value(value)
        pos = end
    while pos < length and text[pos] == " ":
        pos += 1
    source = None
    if pos < length and text[pos] == ":":
        end = text.find(" ", pos)
        if end == -1:
            raise ParseError("source without a command")
        source = text[pos + 1 : end] or None
        pos = end
        while pos < length and text[pos] == " ":
            pos += 1
    rest = text[pos:]
    trailing = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    elif rest.startswith(":"):
        raise ParseError("no command")
    words = [word for word in rest.split(" ") if word]
    if not words:
        raise ParseError("no command")
    command = words[0].upper()
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(command, tuple(params), source, tags)


def ascii_int(text: str) -> int | None:
    """``text`` as a non-negative integer if it is ASCII digits only, else None.

    ``str.isdigit`` also accepts digits such as ``²`` that ``int()`` refuses; a parameter from
    the wire must not reach ``int()`` that way.
    """
    return int(text) if text.isascii() and text.isdigit() else None
