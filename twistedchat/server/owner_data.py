"""Per-owner data the core keeps: ``draft/metadata-2`` values and read markers, with in-memory stores.

Owners are ``User.owner`` or ``Channel.owner`` strings; the storage-backed stores are in
:mod:`twistedchat.server.kept_owners`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from twistedchat.server.limits import READ_MARKERS_KEEP


class MetadataStore(Protocol):
    """Where ``draft/metadata-2`` values live, by owner: ``User.owner`` or ``Channel.owner``.

    Owners are strings: ``account:<folded account>``, ``connection:<id>`` (a connection without
    an account) and ``channel:<folded name>``. The core enforces every limit (keys per owner,
    value bytes) before it calls :meth:`put`; a store only keeps what it is given.
    """

    def values(self, owner: str) -> Mapping[str, str]:
        """The owner's keys and values (empty when it has none); the caller does not change it."""

    def put(self, owner: str, key: str, value: str | None) -> None:
        """Set ``key`` to ``value``, or delete it when ``value`` is None."""

    def forget(self, owner: str) -> None:
        """The owner's live presence ended (its connection quit, its channel emptied).

        The in-memory store drops everything; a persistent one keeps what it persists (accounts,
        registered channels) and drops the rest.
        """


class ReadMarkerStore(Protocol):
    """Where ``draft/read-marker`` timestamps live: per owner (``User.owner``) and target."""

    def get(self, owner: str, target: str) -> str | None:
        """The last-read timestamp (``YYYY-MM-DDThh:mm:ss.sssZ``) for a folded target, or None."""

    def put(self, owner: str, target: str, timestamp: str) -> None:
        """Store a timestamp (the core checked that it only ever increases)."""

    def forget(self, owner: str) -> None:
        """The owner's live presence ended; as :meth:`MetadataStore.forget`."""


_NO_VALUES: Mapping[str, str] = {}


class MemoryMetadata:
    """:class:`MetadataStore` in memory: everything is gone when its owner goes."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, str]] = {}

    def values(self, owner: str) -> Mapping[str, str]:
        return self._values.get(owner, _NO_VALUES)

    def put(self, owner: str, key: str, value: str | None) -> None:
        if value is not None:
            self._values.setdefault(owner, {})[key] = value
            return
        entries = self._values.get(owner)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del self._values[owner]

    def forget(self, owner: str) -> None:
        self._values.pop(owner, None)

    def __len__(self) -> int:
        """How many owners hold values (for tests of what is kept)."""
        return len(self._values)


class MemoryReadMarkers:
    """:class:`ReadMarkerStore` in memory, at most READ_MARKERS_KEEP targets per owner."""

    def __init__(self, keep: int = READ_MARKERS_KEEP) -> None:
        self.keep = keep
        self._markers: dict[str, dict[str, str]] = {}

    def get(self, owner: str, target: str) -> str | None:
        markers = self._markers.get(owner)
        return None if markers is None else markers.get(target)

    def put(self, owner: str, target: str, timestamp: str) -> None:
        markers = self._markers.setdefault(owner, {})
        markers.pop(target, None)  # the newest last, so the oldest is dropped first
        if len(markers) >= self.keep:
            del markers[next(iter(markers))]
        markers[target] = timestamp

    def forget(self, owner: str) -> None:
        self._markers.pop(owner, None)

    def count(self, owner: str) -> int:
        return len(self._markers.get(owner, ()))
