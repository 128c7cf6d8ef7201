"""Conversation logs on disk: one plain-text file per network and conversation, and scrollback
restored from them after a restart.

Files live under ``$XDG_DATA_HOME/twistedchat/logs/NETWORK/CONVERSATION.log`` (``~/.local/share``
when the variable is unset), one line per chat line: ``2026-11-30 09:50:01<TAB>kind<TAB>nick<TAB>
text``. Writes are buffered and flushed by :meth:`ConversationLogger.flush` (the window calls it
once per event-loop turn), so a burst costs no write per line.
"""

from __future__ import annotations

import os
import re
import zlib
from datetime import datetime
from pathlib import Path
from typing import IO

from twistedchat.client.session import (
    Conversation,
    ConversationOpened,
    Event,
    Kind,
    Line,
    LineAdded,
    Session,
)
from twistedchat.wire.names import casefold

#: Lines read back into a conversation when it opens.
RESTORED_LINES = 200
#: Most log files kept open at once (the least recently used are closed).
MAX_OPEN_FILES = 32
#: Bytes read from the end of a log to restore it (a log of any size opens at once).
RESTORE_BYTES = 128 * 1024
#: Longest file name made from a conversation name (longer ones are cut and given a checksum).
MAX_NAME = 100
_UNSAFE = re.compile(r"[^\w#&+.-]")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def data_home() -> Path:
    """Where user data goes: ``$XDG_DATA_HOME`` or ``~/.local/share``."""
    configured = os.environ.get("XDG_DATA_HOME", "")
    return Path(configured) if os.path.isabs(configured) else Path.home() / ".local" / "share"


def safe_name(name: str) -> str:
    """A conversation or network name as a file name: no slashes, no leading dot, not too long."""
    cleaned = _UNSAFE.sub("_", casefold(name).strip("*")) or "server"
    if cleaned.startswith("."):
        cleaned = "_" + cleaned
    if len(cleaned) > MAX_NAME:
        cleaned = f"{cleaned[:MAX_NAME]}-{zlib.crc32(name.encode('utf-8')):08x}"
    return cleaned


def format_line(line: Line) -> str:
    text = line.text.replace("\n", " ").replace("\r", " ")
    return f"{line.time.strftime(TIME_FORMAT)}\t{line.kind.value}\t{line.nick}\t{text}\n"


def parse_line(raw: str) -> Line | None:
    """A log line back as a :class:`Line`; None for a line that is not ours."""
    parts = raw.rstrip("\n").split("\t", 3)
    if len(parts) != 4:
        return None
    try:
        return Line(datetime.strptime(parts[0], TIME_FORMAT), Kind(parts[1]), parts[3], parts[2])
    except ValueError:
        return None


class ConversationLogger:
    """Writes every line of a session to its conversation's file; restores the newest ones."""

    def __init__(self, session: Session, network: str, directory: Path | None = None) -> None:
        self.session = session
        self.directory = (directory or data_home() / "twistedchat" / "logs") / safe_name(network)
        self._files: dict[str, IO[str]] = {}
        #: why logging stopped (a full disk, no permission): said once, then nothing is written
        self.failed: str | None = None
        for conversation in list(session.conversations.values()):
            self._restore(conversation)
        session.subscribe(self.on_event)
        self._subscribed = True

    def path(self, name: str) -> Path:
        return self.directory / f"{safe_name(name)}.log"

    def on_event(self, event: Event) -> None:
        if isinstance(event, LineAdded):
            self._write(event.conversation.name, event.line)
        elif isinstance(event, ConversationOpened):
            self._restore(event.conversation)

    def _write(self, name: str, line: Line) -> None:
        if self.failed is not None:
            return
        key = safe_name(name)
        try:
            log = self._files.pop(key, None)
            if log is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                log = open(self.path(name), "a", encoding="utf-8")  # noqa: SIM115 (kept open)
                if len(self._files) >= MAX_OPEN_FILES:
                    oldest = next(iter(self._files))
                    self._files.pop(oldest).close()
            self._files[key] = log  # most recently used last
            log.write(format_line(line))
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> None:
        self.failed = f"Conversation logs are off: {error.strerror or error} ({self.directory})"
        self.close_files()
        self.session.info(self.failed, kind=Kind.ERROR)

    def _restore(self, conversation: Conversation) -> None:
        path = self.path(conversation.name)
        try:
            with open(path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - RESTORE_BYTES))
                tail = log.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return
        except OSError as error:
            self._fail(error)
            return
        if size > RESTORE_BYTES:
            tail = tail[1:]  # the first line read may be cut
        lines = [line for line in map(parse_line, tail[-RESTORED_LINES:]) if line is not None]
        self.session.restore(conversation, lines)

    def flush(self) -> None:
        try:
            for log in self._files.values():
                log.flush()
        except OSError as error:
            self._fail(error)

    def close_files(self) -> None:
        for log in self._files.values():
            try:
                log.close()
            except OSError:
                pass  # the data is lost either way; say so once (in _fail), never crash
        self._files.clear()

    def close(self) -> None:
        if self._subscribed:
            self._subscribed = False
            self.session.unsubscribe(self.on_event)
        self.close_files()
