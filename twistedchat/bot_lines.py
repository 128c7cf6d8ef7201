"""Pure helpers for bots: fitting text into IRC lines, and pacing outgoing lines.

Nothing here does I/O; :class:`RateLimiter` takes any ``IReactorTime`` (a ``task.Clock`` in tests).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twistedchat.limits import TokenBucket

#: The protocol's line limit, CR LF included.
MAX_LINE_BYTES = 512
#: The longest host name a server may show in our prefix (RFC 1035), used until we learn ours.
MAX_HOST_BYTES = 63


def source_estimate(nick: str, username: str) -> str:
    """A worst-case ``nick!~user@host`` for ourselves, before the server has shown us our own."""
    return f"{nick}!~{username}@{'h' * MAX_HOST_BYTES}"


def text_room(source: str, command: str, target: str) -> int:
    """Bytes left for the text of ``:source COMMAND target :text`` within 512 bytes with CR LF."""
    overhead = len(f":{source} {command} {target} :\r\n".encode())
    return MAX_LINE_BYTES - overhead


def split_text(text: str, room: int) -> list[str]:
    """``text`` as lines of at most ``room`` bytes of UTF-8 each.

    Line breaks in ``text`` start new lines (blank lines are dropped); a long line is cut at its
    last space that fits, or inside a word when there is none, but never inside a character.
    """
    if room < 4:
        raise ValueError(f"no room for text ({room} bytes): the target or nick is too long")
    pieces: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        data = line.encode("utf-8")
        while len(data) > room:
            cut = room
            while cut > 0 and (data[cut] & 0xC0) == 0x80:  # data[cut] continues a character
                cut -= 1
            space = data.rfind(b" ", 0, cut + 1)
            if space > room // 2:
                pieces.append(data[:space].decode("utf-8"))
                data = data[space + 1 :]
            else:
                pieces.append(data[:cut].decode("utf-8"))
                data = data[cut:]
        if data.strip():
            pieces.append(data.decode("utf-8"))
    return pieces


class RateLimiter:
    """Sends lines through ``send`` no faster than ``burst`` at once then ``rate`` per second.

    Lines beyond the budget wait in order; ``urgent`` lines (``PONG``) go before waiting ones.
    The defaults stay well inside the daemon's own flood limit (20 at once, then 5 per second).
    """

    def __init__(
        self,
        send: Callable[[Any], None],
        clock: Any,
        burst: int = 10,
        rate: float = 2.0,
    ) -> None:
        self._send = send
        self._clock = clock
        self._bucket = TokenBucket(burst, rate, clock.seconds())
        self._waiting: deque[Any] = deque()
        self._call: Any = None

    @property
    def waiting(self) -> int:
        """How many lines are queued."""
        return len(self._waiting)

    def __call__(self, line: Any, urgent: bool = False) -> None:
        if urgent:
            self._waiting.appendleft(line)
        else:
            self._waiting.append(line)
        if self._call is None:
            self._drain()

    def _drain(self) -> None:
        self._call = None
        while self._waiting:
            wait = self._bucket.take(self._clock.seconds())
            if wait > 0:
                self._call = self._clock.callLater(wait, self._drain)
                return
            self._send(self._waiting.popleft())

    def stop(self) -> None:
        """Drop the queued lines (the connection is gone)."""
        self._waiting.clear()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
