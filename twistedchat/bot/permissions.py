"""Who may run a handler (``@require``) and how often (``@rate``); both answer with one polite notice.

``@require`` trusts what the server vouches for: channel prefix modes (op, voice) from the bot's
channel state, and accounts from ``account-tag``, ``extended-join``, ``account-notify`` or WHOX.
Host masks are offered too, but the ``user`` part of ``nick!user@host`` is chosen by the client,
so a mask is only as strong as its host part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twistedchat.wire.names import mask_matches

if TYPE_CHECKING:
    from twistedchat.bot.handlers import Event

REQUIRE_ATTRIBUTE = "_twistedchat_bot_require"
RATE_ATTRIBUTE = "_twistedchat_bot_rate"
#: How many (handler, nick or channel) rate entries are kept before old ones are dropped.
MAX_RATE_ENTRIES = 10_000


@dataclass(frozen=True)
class Requirement:
    """Any one of these lets a user through: op, voice (or op), an account, a mask."""

    op: bool = False
    voice: bool = False
    accounts: frozenset[str] = frozenset()
    masks: tuple[str, ...] = ()

    def describe(self) -> str:
        """What the refusal says is needed."""
        parts = []
        if self.op:
            parts.append("be a channel operator")
        elif self.voice:
            parts.append("have voice")
        if self.accounts:
            parts.append("be logged in to an allowed account")
        if self.masks:
            parts.append("match an allowed host mask")
        return " or ".join(parts) or "be allowed"


def require(*, op: bool = False, voice: bool = False, accounts: Iterable[str] = (),
            masks: Iterable[str] = ()) -> Callable[[Any], Any]:
    """Only users who pass one of the checks may run the handler; others asking for a command get
    a notice (other handlers just skip their lines).

    ``op``/``voice``: the user holds that status (or higher) in the channel of the event; in
    private neither is ever true. ``accounts``: the user is logged in to one of them (the server
    must say so: SASL accounts with ``account-tag``, ``extended-join`` or WHOX). ``masks``:
    ``nick!user@host`` wildcards (weak: see the module docstring).
    """
    requirement = Requirement(op, voice, frozenset(accounts), tuple(masks))
    if requirement == Requirement():
        raise ValueError("@require needs at least one of op, voice, accounts, masks")

    def decorate(function: Any) -> Any:
        setattr(function, REQUIRE_ATTRIBUTE, requirement)
        return function

    return decorate


def allowed(requirement: Requirement, event: Event) -> bool:
    """True if the event's user passes ``requirement``."""
    bot = event.bot
    state = bot.state
    if event.channel is not None:
        if requirement.op and state.has_mode_at_least(event.channel, event.nick, "o"):
            return True
        if requirement.voice and state.has_mode_at_least(event.channel, event.nick, "v"):
            return True
    if requirement.accounts and event.account:
        folded = state.fold(event.account)
        if any(state.fold(account) == folded for account in requirement.accounts):
            return True
    if requirement.masks and "!" in event.user:
        return any(mask_matches(mask, event.user) for mask in requirement.masks)
    return False


@dataclass(frozen=True)
class Rate:
    """At most one use per ``user`` seconds by one nick, per ``channel`` seconds in one channel."""

    user: float | None = None
    channel: float | None = None


def rate(*, user: float | None = None, channel: float | None = None) -> Callable[[Any], Any]:
    """Limit a command or message handler: once per ``user`` seconds for each nick, once per
    ``channel`` seconds in each channel. The first refused use gets one notice; later ones,
    until the limit passes, are ignored silently.
    """
    for value in (user, channel):
        if value is not None and not value > 0:
            raise ValueError(f"@rate needs positive seconds, not {value!r}")
    if user is None and channel is None:
        raise ValueError("@rate needs user= or channel= seconds")
    limit = Rate(user, channel)

    def decorate(function: Any) -> Any:
        setattr(function, RATE_ATTRIBUTE, limit)
        return function

    return decorate


#: The same decorator under a name a class body that sets the ``rate`` setting does not hide.
rate_limit = rate


class RateGate:
    """The bot's rate bookkeeping: when each (handler, nick/channel) may be used again."""

    def __init__(self, max_entries: int = MAX_RATE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._next: dict[tuple[str, str, str], float] = {}
        self._warned: set[tuple[str, str]] = set()

    def check(self, handler: str, limit: Rate, nick: str, channel: str | None,
              now: float) -> float:
        """0.0 and the use is counted, or the seconds to wait (nothing counted)."""
        keys = []
        if limit.user is not None:
            keys.append(((handler, "nick", nick), limit.user))
        if limit.channel is not None and channel is not None:
            keys.append(((handler, "channel", channel), limit.channel))
        wait = max((self._next.get(key, 0.0) - now for key, _ in keys), default=0.0)
        if wait > 0:
            return wait
        if len(self._next) >= self.max_entries:
            self._prune(now)
        for key, seconds in keys:
            self._next[key] = now + seconds
        self._warned.discard((handler, nick))
        return 0.0

    def first_refusal(self, handler: str, nick: str) -> bool:
        """True the first time ``nick`` is refused ``handler`` since their last allowed use."""
        key = (handler, nick)
        if key in self._warned:
            return False
        if len(self._warned) >= self.max_entries:
            self._warned.clear()
        self._warned.add(key)
        return True

    def _prune(self, now: float) -> None:
        for key in [k for k, when in self._next.items() if when <= now]:
            del self._next[key]
        if len(self._next) >= self.max_entries:  # all still running: drop the oldest half
            for key in sorted(self._next, key=self._next.__getitem__)[: self.max_entries // 2]:
                del self._next[key]
