"""Other people's state in the session: MONITOR (online/offline), away, bot mode, metadata.

A mixin of :class:`twistedchat.client.session.Session`, without I/O: it says which MONITOR and
METADATA lines to send and keeps :class:`~twistedchat.client.people.People` up to date from what
the server tells (730/731, ``AWAY`` with ``extended-monitor``, the ``bot`` tag and WHO's ``B`` flag,
``METADATA`` notifications and 761 answers).
"""

from __future__ import annotations

from typing import Any

from twistedchat.client.model import Conversation, PersonChanged
from twistedchat.client.people import METADATA_KEYS, People, clean_metadata

#: Most nicks one MONITOR line names (the line stays well under 512 bytes).
MONITOR_PER_LINE = 10
_FIELDS = {"display-name": "display_name", "avatar": "avatar", "color": "colour"}


class PresenceParts:
    """Presence, bot mode and metadata of the people in a session."""

    people: People
    conversations: dict[str, Conversation]
    emit: Any
    is_me: Any

    def monitored(self) -> list[str]:
        """The nicks to watch: the other side of every private conversation."""
        return [c.name for c in self.conversations.values() if c.is_query]

    def monitor_lines(self, add: list[str], limit: int | None = None) -> list[str]:
        """``MONITOR + nick,…`` lines for ``add`` (at most ``limit`` nicks: the server's MONITOR)."""
        nicks = add[:limit] if limit is not None else add
        return [f"MONITOR + {','.join(nicks[i:i + MONITOR_PER_LINE])}"
                for i in range(0, len(nicks), MONITOR_PER_LINE)]

    def metadata_subscription(self) -> str:
        return "METADATA * SUB " + " ".join(METADATA_KEYS)

    def _person_changed(self, nick: str, **changes: object) -> None:
        if self.people.update(nick, **changes):
            self.emit(PersonChanged(nick))

    def on_monitor(self, targets: str, online: bool) -> None:
        """730 (online) or 731 (offline): ``nick!user@host,nick2`` lists."""
        for target in targets.split(","):
            nick = target.split("!", 1)[0]
            if nick:
                changes: dict[str, object] = {"online": online}
                if not online:
                    changes["away"] = False
                self._person_changed(nick, **changes)

    def on_person_away(self, nick: str, away: bool) -> None:
        """Away (``away-notify``, ``extended-monitor``, WHO's ``G`` flag) of someone we know."""
        self._person_changed(nick, away=away)

    def on_bot(self, nick: str) -> None:
        """``nick`` is a bot (user mode ``+B``: the ``bot`` tag, or ``B`` in WHO flags)."""
        if nick and not self.is_me(nick):
            self._person_changed(nick, bot=True)

    def on_metadata(self, target: str, key: str, value: str | None) -> None:
        """A METADATA notification or 761 answer; ``None`` clears the key."""
        field = _FIELDS.get(key)
        if field is None or target.startswith(("#", "&")) or target == "*":
            return
        self._person_changed(target, **{field: clean_metadata(key, value)})
