"""Metadata and read markers that outlive a connection: accounts' and registered channels', kept in storage.

``StoredMetadata`` and ``StoredReadMarkers`` are the in-memory stores of ``state.py`` (the core
reads them synchronously) plus write-behind to a ``Store`` for owners worth keeping: an existing
account (``account:<name>``) or a registered channel (``channel:<name>``). Connections without an
account stay in memory only. ``load(owner)`` brings an owner's kept data back (at login, or when a
registered channel is re-created) and ``keep_all(owner)`` saves what an owner has now (after REGISTER).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed

from twistedchat.server.state import READ_MARKERS_KEEP, MemoryMetadata, MemoryReadMarkers
from twistedchat.storage.base import Store


def is_kept(store: Store, owner: str) -> bool:
    """Whether an owner's data belongs in storage: an account's, or a registered channel's."""
    kind, _, name = owner.partition(":")
    if kind == "account":
        return store.account(name) is not None
    return kind == "channel" and store.registered_channel(name) is not None


class StoredMetadata(MemoryMetadata):
    """``MetadataStore`` whose accounts and registered channels keep their keys across restarts."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        #: owners being loaded -> keys changed meanwhile (the load must not undo those)
        self._loading: dict[str, set[str]] = {}

    def put(self, owner: str, key: str, value: str | None) -> None:
        super().put(owner, key, value)
        if owner in self._loading:
            self._loading[owner].add(key)
        if is_kept(self.store, owner):
            self.store.save_metadata(owner, key, value)

    def keep_all(self, owner: str) -> None:
        """Save every key the owner has now (it just became worth keeping)."""
        for key, value in self.values(owner).items():
            self.store.save_metadata(owner, key, value)

    def load(self, owner: str) -> Deferred[None]:
        """Bring back the owner's kept keys; keys set while loading stay as set."""
        if not is_kept(self.store, owner):
            return succeed(None)
        touched = self._loading.setdefault(owner, set())

        def loaded(data: tuple[dict[str, str], dict[str, str]]) -> None:
            self._loading.pop(owner, None)
            for key, value in data[0].items():
                if key not in touched:
                    MemoryMetadata.put(self, owner, key, value)

        return self.store.owner_data(owner).addCallback(loaded)


class StoredReadMarkers(MemoryReadMarkers):
    """``ReadMarkerStore`` whose accounts keep their markers across restarts and connections."""

    def __init__(self, store: Store, keep: int = READ_MARKERS_KEEP) -> None:
        super().__init__(keep)
        self.store = store
        self._loading: dict[str, set[str]] = {}

    def put(self, owner: str, target: str, timestamp: str) -> None:
        markers = self._markers.get(owner, {})
        evicted = next(iter(markers)) if target not in markers and len(markers) >= self.keep else None
        super().put(owner, target, timestamp)
        if owner in self._loading:
            self._loading[owner].add(target)
        if is_kept(self.store, owner):
            self.store.save_read_marker(owner, target, timestamp)
            if evicted is not None:
                self.store.save_read_marker(owner, evicted, None)

    def keep_all(self, owner: str) -> None:
        """Save every marker the owner has now (it just became worth keeping)."""
        for target, stamp in self._markers.get(owner, {}).items():
            self.store.save_read_marker(owner, target, stamp)

    def load(self, owner: str) -> Deferred[None]:
        """Bring back the owner's kept markers (oldest first, as they would have been set)."""
        if not is_kept(self.store, owner):
            return succeed(None)
        touched = self._loading.setdefault(owner, set())

        def loaded(data: tuple[dict[str, str], dict[str, str]]) -> None:
            self._loading.pop(owner, None)
            current = self._markers.setdefault(owner, {})
            for target, stamp in sorted(data[1].items(), key=lambda item: item[1]):
                if target not in touched and target not in current and len(current) < self.keep:
                    current[target] = stamp

        return self.store.owner_data(owner).addCallback(loaded)
