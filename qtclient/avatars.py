"""Avatars (``draft/metadata-2`` ``avatar``): fetched over http(s) with Twisted's HTTP client,
size-capped, shrunk, cached on disk and in memory; never blocking the window.

:meth:`AvatarCache.image_html` answers at once: the cached image, or nothing while (or after
failing) to fetch it; ``on_ready`` says when an image arrived, so the view can draw it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QByteArray, Qt
from PyQt6.QtGui import QImage
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from twistedchat.client.people import avatar_url

log = Logger()

#: Largest avatar downloaded, in bytes; a bigger one is dropped.
MAX_AVATAR_BYTES = 256 * 1024
#: Avatars are shrunk to this many pixels a side, and shown at half that.
AVATAR_PIXELS = 64
#: Seconds a download may take; fetches at once; addresses remembered.
FETCH_TIMEOUT = 20.0
MAX_FETCHES = 4
MAX_KNOWN = 500


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "twistedchat" / "avatars"


class TooLarge(Exception):
    """The avatar is over :data:`MAX_AVATAR_BYTES`."""


class _Body(protocol.Protocol):
    """Collects a response body up to ``limit`` bytes; more, and the download is dropped."""

    def __init__(self, limit: int, done: defer.Deferred[bytes]) -> None:
        self.limit, self.done, self.data = limit, done, bytearray()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > self.limit and not self.done.called:
            self.done.errback(TooLarge())
            if self.transport is not None:
                self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if not self.done.called:
            self.done.callback(bytes(self.data))


class AvatarCache:
    """Avatars by address: a file in :func:`cache_dir` once fetched and checked."""

    def __init__(self, reactor: Any, on_ready: Callable[[str], None] | None = None,
                 directory: Path | None = None, agent: Any = None) -> None:
        self.reactor = reactor
        self.on_ready = on_ready
        self.directory = directory or cache_dir()
        self.agent = agent or Agent(reactor, connectTimeout=10)
        #: address -> file (fetched), or None (failed: not tried again this run)
        self.known: dict[str, Path | None] = {}
        self.fetching: set[str] = set()

    def path_for(self, url: str) -> Path:
        return self.directory / (hashlib.sha256(url.encode()).hexdigest() + ".png")

    def image_html(self, url: str) -> str:
        """``<img>`` of the avatar if we have it (fetching it otherwise), else ``""``."""
        path = self.lookup(url)
        if path is None:
            return ""
        half = AVATAR_PIXELS // 2
        return f'<img src="{path.as_uri()}" width="{half}" height="{half}"> '

    def lookup(self, url: str) -> Path | None:
        """The cached file for ``url``, or None (a fetch is started if none was tried)."""
        url = avatar_url(url)
        if not url:
            return None
        if url in self.known:
            return self.known[url]
        path = self.path_for(url)
        if path.exists():
            self.known[url] = path
            return path
        self.fetch(url)
        return None

    def fetch(self, url: str) -> Any:
        """Start fetching ``url`` (a Deferred firing with the file or None), unless it is being
        fetched already or too many are (None)."""
        if url in self.fetching or len(self.fetching) >= MAX_FETCHES:
            return None
        self.fetching.add(url)
        requested = self.agent.request(b"GET", url.encode("ascii", "ignore"),
                                       Headers({b"User-Agent": [b"twistedchat"]}))
        timeout = self.reactor.callLater(FETCH_TIMEOUT, requested.cancel)
        body: defer.Deferred[bytes] = requested.addCallback(self._read)
        stored: defer.Deferred[Path | None] = body.addCallback(self._store, url)
        stored.addErrback(self._failed, url)

        def finished(result: Path | None) -> Path | None:
            self.fetching.discard(url)
            if timeout.active():
                timeout.cancel()
            if len(self.known) >= MAX_KNOWN:
                self.known.pop(next(iter(self.known)))
            self.known[url] = result
            if result is not None and self.on_ready is not None:
                self.on_ready(url)
            return result

        return stored.addBoth(finished)

    def _read(self, response: Any) -> defer.Deferred[bytes]:
        if response.code != 200:
            raise ValueError(f"HTTP {response.code}")
        if response.length is not None and isinstance(response.length, int) \
                and response.length > MAX_AVATAR_BYTES:
            response.deliverBody(protocol.Protocol())  # drop it
            raise TooLarge()
        done: defer.Deferred[bytes] = defer.Deferred()
        response.deliverBody(_Body(MAX_AVATAR_BYTES, done))
        return done

    def _store(self, data: bytes, url: str) -> Path | None:
        image = QImage()
        if not image.loadFromData(QByteArray(data)) or image.isNull():
            raise ValueError("not an image")
        image = image.scaled(AVATAR_PIXELS, AVATAR_PIXELS, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(url)
        if not image.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        return path

    def _failed(self, failure: Failure, url: str) -> None:
        log.info("avatar {url} not shown: {why}", url=url, why=failure.getErrorMessage())
        return None
