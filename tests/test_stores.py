"""The contract of the metadata and read-marker stores (``state.MetadataStore``,
``state.ReadMarkerStore``): what any implementation, in memory or backed by storage, must do.

A storage-backed store joins by adding its factory to the lists below.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from twistedchat.server.kept_owners import StoredMetadata, StoredReadMarkers
from twistedchat.server.state import (
    MemoryMetadata,
    MemoryReadMarkers,
    MetadataStore,
    ReadMarkerStore,
)
from twistedchat.storage.memory import MemoryStore


def stored_metadata() -> StoredMetadata:
    """The storage-backed store on the memory store (tests/test_storage.py runs it on SQLite and
    PostgreSQL across a restart)."""
    return StoredMetadata(MemoryStore())


def stored_read_markers() -> StoredReadMarkers:
    """As ``stored_metadata``, for read markers."""
    return StoredReadMarkers(MemoryStore())


METADATA_STORES: list[Callable[[], MetadataStore]] = [MemoryMetadata, stored_metadata]
READ_MARKER_STORES: list[Callable[[], ReadMarkerStore]] = [MemoryReadMarkers, stored_read_markers]


@pytest.mark.parametrize("make", METADATA_STORES)
def test_metadata_store_keeps_sets_deletes_and_forgets(make):
    store = make()
    assert dict(store.values("connection:1")) == {}
    store.put("connection:1", "avatar", "https://x/a.png")
    store.put("connection:1", "display-name", "")
    store.put("channel:#c", "url", "u")
    assert dict(store.values("connection:1")) == {"avatar": "https://x/a.png", "display-name": ""}
    store.put("connection:1", "avatar", None)
    store.put("connection:1", "missing", None)  # deleting what is not there is no error
    assert dict(store.values("connection:1")) == {"display-name": ""}
    store.forget("connection:1")
    assert dict(store.values("connection:1")) == {}
    assert dict(store.values("channel:#c")) == {"url": "u"}


@pytest.mark.parametrize("make", READ_MARKER_STORES)
def test_read_marker_store_keeps_per_owner_and_target(make):
    store = make()
    assert store.get("account:alice", "#c") is None
    store.put("account:alice", "#c", "2026-01-01T00:00:00.000Z")
    store.put("account:alice", "#c", "2026-01-02T00:00:00.000Z")
    store.put("account:bob", "#c", "2025-01-01T00:00:00.000Z")
    assert store.get("account:alice", "#c") == "2026-01-02T00:00:00.000Z"
    assert store.get("account:bob", "#c") == "2025-01-01T00:00:00.000Z"
    store.forget("account:alice")
    assert store.get("account:alice", "#c") is None
    assert store.get("account:bob", "#c") is not None
