"""A channel: its members with their prefix modes, topic, modes, lists and invitations. No I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twistedchat.server.limits import HIGHEST_PREFIX, MULTI_PREFIX, MUTE_PREFIX
from twistedchat.wire.names import casefold, mask_matches

if TYPE_CHECKING:
    from twistedchat.server.state import User


class RemoteOutbox(list[Any]):
    """The outbox of a user on another node: its own node delivers its lines, this one drops them."""

    def append(self, item: Any) -> None:
        """Drop the line: the user's own node sends it."""


#: The one outbox every remote user shares (``Relay.send_to`` skips it without a call).
REMOTE_OUTBOX = RemoteOutbox()


class Members(dict["User", str]):
    """A channel's members (member -> its prefix modes), and apart, the ones on this node.

    ``local`` holds the members whose lines this process delivers: every member without a
    cluster; with one, not the replicas of remote users (their outbox is ``REMOTE_OUTBOX``), so a
    message's fan-out never walks them. Kept in step by every way a member is added or removed.
    """

    __slots__ = ("local",)

    def __init__(self) -> None:
        super().__init__()
        #: the members on this node, in the order they joined
        self.local: dict[User, None] = {}

    def __setitem__(self, member: User, modes: str) -> None:
        dict.__setitem__(self, member, modes)
        if member.outbox is not REMOTE_OUTBOX:
            self.local[member] = None

    def __delitem__(self, member: User) -> None:
        dict.__delitem__(self, member)
        self.local.pop(member, None)

    def pop(self, member: User, *default: Any) -> Any:
        """Remove ``member`` (from ``local`` too); its prefix modes, or ``default``."""
        self.local.pop(member, None)
        return dict.pop(self, member, *default)

    def clear(self) -> None:
        dict.clear(self)
        self.local.clear()

    def _not_kept_in_step(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("add or remove members one at a time (Members keeps local in step)")

    update = setdefault = popitem = __ior__ = _not_kept_in_step


class Channel:
    """A channel: its members with their prefix modes, topic, modes, lists and invitations."""

    __slots__ = (
        "name",
        "folded",
        "members",
        "topic",
        "topic_setter",
        "topic_time",
        "created",
        "modes",
        "key",
        "limit",
        "bans",
        "excepts",
        "invex",
        "_names",
        "routes",
    )

    def __init__(self, name: str, now: float = 0.0) -> None:
        self.name = name
        self.folded = casefold(name)
        #: member -> its prefix modes, a subset of ``PREFIX_MODES`` ("o", "v", "ov")
        self.members = Members()
        self.topic = ""
        self.topic_setter = ""
        self.topic_time = 0.0
        self.created = now
        self.modes: set[str] = {"n", "t"}
        self.key: str | None = None
        self.limit: int | None = None
        #: mask -> (set by, time), for bans (+b, a ``m:`` mask mutes), ban exceptions (+e, a
        #: ``m:`` mask exempts from mutes) and invite exceptions (+I); at most MAXLIST each.
        self.bans: dict[str, tuple[str, float]] = {}
        self.excepts: dict[str, tuple[str, float]] = {}
        self.invex: dict[str, tuple[str, float]] = {}
        #: The member list as NAMES shows it to members (highest prefix, nicks), kept while valid.
        self._names: str | None = None
        #: What a network of nodes keeps about where the members are (the number of members it
        #: was made for, the other nodes with members); cleared when a member leaves or changes,
        #: and made again when the number of members differs.
        self.routes: tuple[int, list[str]] | None = None

    def names_text(self) -> str:
        """``@op +voiced plain ...``: the NAMES list a member sees, without capabilities."""
        if self._names is None:
            self._names = " ".join(
                HIGHEST_PREFIX[modes] + member.nick for member, modes in self.members.items()
            )
        return self._names

    def set_prefixes(self, member: User, modes: str) -> None:
        """Give a member its prefix modes (a subset of ``PREFIX_MODES``, in that order)."""
        self.members[member] = modes
        self._names = None

    def forget_names(self) -> None:
        """Members left or changed: forget what was kept about the member list."""
        self._names = None
        self.routes = None

    def is_op(self, user: User) -> bool:
        return "o" in self.members.get(user, "")

    @property
    def owner(self) -> str:
        """Whose metadata this channel's is (a registered channel keeps it past its last member)."""
        return "channel:" + self.folded

    def list_of(self, letter: str) -> dict[str, tuple[str, float]]:
        """The list mode ``letter`` (one of LIST_MODES) keeps."""
        return self.bans if letter == "b" else self.excepts if letter == "e" else self.invex

    def can_speak(self, user: User) -> bool:
        """Whether ``user`` may send here under +n, +m, bans and mutes (members or not).

        A channel without bans costs no more than before: the lists are only read when set.
        """
        prefixes = self.members.get(user)
        if prefixes is None:
            modes = self.modes
            return "n" not in modes and "m" not in modes and not (
                self.bans and (self.is_banned(user) or self.is_muted(user))
            )
        if prefixes:
            return True
        if "m" in self.modes:
            return False
        return not self.bans or not (self.is_banned(user) or self.is_muted(user))

    def is_banned(self, user: User) -> bool:
        """Whether a ban (not a mute) matches ``user`` and no ban exception does.

        Masks match the user as others see it (its cloak) and as it really connects (its real
        address), so a ban on a cloak or on an address range both hold.
        """
        if not self.bans:
            return False
        sources = user.ban_sources()
        if not any(mask_matches(m, s) for m in self.bans if not m.startswith(MUTE_PREFIX)
                   for s in sources):
            return False
        return not any(mask_matches(m, s) for m in self.excepts if not m.startswith(MUTE_PREFIX)
                       for s in sources)

    def is_muted(self, user: User) -> bool:
        """Whether a mute extban (``m:mask``) matches ``user`` and no ``m:`` exception does."""
        sources = user.ban_sources()
        cut = len(MUTE_PREFIX)
        if not any(mask_matches(m[cut:], s) for m in self.bans if m.startswith(MUTE_PREFIX)
                   for s in sources):
            return False
        return not any(mask_matches(m[cut:], s) for m in self.excepts
                       if m.startswith(MUTE_PREFIX) for s in sources)

    def is_invite_excepted(self, user: User) -> bool:
        """Whether an invite exception (+I) lets ``user`` past +i."""
        sources = user.ban_sources()
        return any(mask_matches(mask, s) for mask in self.invex for s in sources)

    def prefix_of(self, user: User, multi: bool = False) -> str:
        """The member's prefix symbols: the highest one, or all of them with multi-prefix."""
        return (MULTI_PREFIX if multi else HIGHEST_PREFIX)[self.members.get(user, "")]

    def mode_string(self, show_key: bool) -> tuple[str, ...]:
        """The ``+modes`` string and its parameters, for RPL_CHANNELMODEIS."""
        flags = "".join(sorted(self.modes))
        params: list[str] = []
        if self.key is not None:
            flags += "k"
            params.append(self.key if show_key else "*")
        if self.limit is not None:
            flags += "l"
            params.append(str(self.limit))
        return ("+" + flags, *params)

    def __repr__(self) -> str:
        return f"<Channel {self.name} ({len(self.members)})>"
