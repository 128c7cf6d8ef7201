"""What the client knows of other people: online state (MONITOR), away, bot mode, metadata.

Plain data, no I/O. :class:`People` is capped: a server announcing thousands of nicks cannot grow
it past :data:`MAX_PEOPLE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from twistedchat.wire.names import casefold

#: Most people remembered (the oldest-learned are forgotten first).
MAX_PEOPLE = 5000
#: The metadata keys the client subscribes to and shows.
METADATA_KEYS = ("display-name", "avatar", "color")
#: Longest display name shown, in characters (the server caps values at 300 bytes).
MAX_DISPLAY_NAME = 64
COLOUR = re.compile(r"#[0-9a-fA-F]{6}\Z")


@dataclass(slots=True)
class Person:
    """One nick as we know it."""

    nick: str
    #: online per MONITOR (730/731); None when nobody told us
    online: bool | None = None
    away: bool = False
    bot: bool = False
    display_name: str = ""
    avatar: str = ""
    colour: str = ""

    def state(self) -> str:
        """``online``, ``away``, ``offline`` or ``""`` (unknown), in words for the view."""
        if self.online is False:
            return "offline"
        if self.away:
            return "away"
        return "online" if self.online else ""

    def label(self) -> str:
        """The display name with the nick, ``Ada Lovelace (ada)``, or the nick alone."""
        if self.display_name and casefold(self.display_name) != casefold(self.nick):
            return f"{self.display_name} ({self.nick})"
        return self.nick


def avatar_url(value: str) -> str:
    """``value`` if it is an http(s) address, else ``""`` (no file:, data: or other schemes)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return value.strip()


def clean_metadata(key: str, value: str | None) -> str:
    """A metadata value as the view may use it (``""``: unset or unusable)."""
    if value is None:
        return ""
    if key == "display-name":
        return " ".join(value.split())[:MAX_DISPLAY_NAME]
    if key == "avatar":
        return avatar_url(value)
    if key == "color":
        return value if COLOUR.match(value) else ""
    return ""


class People:
    """People by casefolded nick."""

    def __init__(self, limit: int = MAX_PEOPLE) -> None:
        self.limit = limit
        self._people: dict[str, Person] = {}

    def __len__(self) -> int:
        return len(self._people)

    def get(self, nick: str) -> Person | None:
        return self._people.get(casefold(nick))

    def person(self, nick: str) -> Person:
        """The entry for ``nick``, made if new (forgetting the oldest past the limit)."""
        key = casefold(nick)
        person = self._people.get(key)
        if person is None:
            if len(self._people) >= self.limit:
                self._people.pop(next(iter(self._people)))
            person = self._people[key] = Person(nick)
        return person

    def update(self, nick: str, **changes: object) -> bool:
        """Set fields of ``nick``'s entry; True if anything changed."""
        person = self.person(nick)
        changed = False
        for name, value in changes.items():
            if getattr(person, name) != value:
                setattr(person, name, value)
                changed = True
        return changed

    def rename(self, old: str, new: str) -> None:
        person = self._people.pop(casefold(old), None)
        if person is not None:
            person.nick = new
            self._people[casefold(new)] = person

    def forget(self, nick: str) -> None:
        self._people.pop(casefold(nick), None)
