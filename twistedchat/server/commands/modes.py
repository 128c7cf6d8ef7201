"""MODE for users and channels; channel modes are a table by letter (:data:`CHANNEL_MODES`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from twistedchat.server.commands.table import command
from twistedchat.server.state import (
    BANLEN,
    FLAG_MODES,
    KEYLEN,
    LIST_MODES,
    MAXLIST,
    MODES_PER_COMMAND,
    MUTE_PREFIX,
    PREFIX_MODES,
    Channel,
    User,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.message import MAX_LINE_BYTES, Message, ascii_int
from twistedchat.wire.names import CHANTYPES, is_channel_name, normalize_mask

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

#: Most mode letters one MODE command may carry (as InspIRCd's default); the rest are ignored.
MODE_LETTERS = 20


class ModeRun:
    """One MODE command being applied to a channel: the changes so far and the room left."""

    __slots__ = ("core", "user", "channel", "changes", "params", "room")

    def __init__(self, core: ServerCore, user: User, channel: Channel) -> None:
        self.core = core
        self.user = user
        self.channel = channel
        self.changes: list[str] = []
        self.params: list[str] = []
        #: Bytes left for parameters, so the relayed MODE line keeps within 512.
        self.room = MAX_LINE_BYTES - len(
            f":{user.source} MODE {channel.name} {'+x' * MODE_LETTERS} \r\n".encode()
        )

    def applied(self, adding: bool, letter: str, param: str | None = None) -> None:
        """Record one change (and its parameter) for the relayed MODE line."""
        self.changes.append(("+" if adding else "-") + letter)
        if param is not None:
            self.params.append(param)
            self.room -= len(param.encode()) + 1

    def invalid(self, letter: str, param: str, text: str) -> None:
        """696 ERR_INVALIDMODEPARAM."""
        self.core.reply(
            self.user, N.ERR_INVALIDMODEPARAM, self.channel.name, letter, param or "*", text
        )


#: Applies one change: ``(run, adding, letter, parameter or "")``.
ModeSetter = Callable[[ModeRun, bool, str, str], None]


class ChannelMode(NamedTuple):
    """How one channel mode letter is set and unset."""

    apply: ModeSetter
    param_on_set: bool
    param_on_unset: bool


def _flag(run: ModeRun, adding: bool, letter: str, param: str) -> None:
    modes = run.channel.modes
    if adding != (letter in modes):
        (modes.add if adding else modes.discard)(letter)
        run.applied(adding, letter)


def list_mask(letter: str, param: str) -> str | None:
    """The entry list mode ``letter`` keeps for ``param``, or None if it is not a valid mask.

    ``nick!user@host`` is completed as usual; on +b and +e, ``m:mask`` (or ``~m:mask``, as
    other servers spell it) is the mute extban and its exception, kept as ``m:nick!user@host``.
    """
    if param.startswith(":") or " " in param or "," in param:
        return None
    if letter in "be" and param.startswith("~" + MUTE_PREFIX):
        param = param[1:]
    if letter in "be" and param.startswith(MUTE_PREFIX):
        inner = param[len(MUTE_PREFIX):]
        mask = MUTE_PREFIX + normalize_mask(inner) if inner else None
    else:
        mask = normalize_mask(param) if param else None
    return mask if mask is not None and len(mask.encode()) <= BANLEN else None


def _list_entry(run: ModeRun, adding: bool, letter: str, param: str) -> None:
    """+b, +e, +I: add or remove one mask, at most MAXLIST in each list (else 478)."""
    mask = list_mask(letter, param)
    if mask is None:
        run.invalid(letter, param, "Invalid mask")
        return
    entries = run.channel.list_of(letter)
    if adding and mask not in entries:
        if len(entries) >= MAXLIST:
            run.core.reply(run.user, N.ERR_BANLISTFULL, run.channel.name, letter,
                           "Channel list is full")
            return
        entries[mask] = (run.user.source, run.core.clock())
    elif not adding and mask in entries:
        del entries[mask]
    else:
        return
    run.applied(adding, letter, mask)


def _key(run: ModeRun, adding: bool, letter: str, param: str) -> None:
    channel = run.channel
    if adding:
        if (not param or " " in param or "," in param or param.startswith(":")
                or len(param.encode()) > KEYLEN):
            run.invalid(letter, param, "Invalid key")
            return
        channel.key = param
        run.applied(adding, letter, param)
    elif channel.key is not None:
        channel.key = None
        run.applied(adding, letter, "*")


def _limit(run: ModeRun, adding: bool, letter: str, param: str) -> None:
    channel = run.channel
    if adding:
        if not ascii_int(param) or len(param) > 9:
            run.invalid(letter, param, "Invalid limit")
            return
        channel.limit = int(param)
        run.applied(adding, letter, str(channel.limit))
    elif channel.limit is not None:
        channel.limit = None
        run.applied(adding, letter)


def _prefix(run: ModeRun, adding: bool, letter: str, param: str) -> None:
    core, channel = run.core, run.channel
    target = core.state.find_user(param)
    if target is None:
        core.reply(run.user, N.ERR_NOSUCHNICK, param, "No such nick/channel")
        return
    if target not in channel.members:
        core.reply(run.user, N.ERR_USERNOTINCHANNEL, target.nick, channel.name,
                   "They aren't on that channel")
        return
    current = channel.members[target]
    if adding and letter not in current:
        channel.set_prefixes(target, "".join(m for m in PREFIX_MODES if m in current + letter))
    elif not adding and letter in current:
        channel.set_prefixes(target, current.replace(letter, ""))
    else:
        return
    run.applied(adding, letter, target.nick)


#: Every channel mode by letter: flags (ISUPPORT type D), the lists (A: bans, ban exceptions,
#: invite exceptions), the key (B), the limit (C) and the member prefixes.
CHANNEL_MODES: dict[str, ChannelMode] = {
    **{letter: ChannelMode(_flag, False, False) for letter in FLAG_MODES},
    **{letter: ChannelMode(_list_entry, True, True) for letter in LIST_MODES},
    "k": ChannelMode(_key, True, True),
    "l": ChannelMode(_limit, True, False),
    **{letter: ChannelMode(_prefix, True, True) for letter in PREFIX_MODES},
}


#: What ``MODE #channel <letter>`` answers for each list: an entry, the end, the end's text.
LIST_REPLIES: dict[str, tuple[str, str, str]] = {
    "b": (N.RPL_BANLIST, N.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (N.RPL_EXCEPTLIST, N.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
    "I": (N.RPL_INVITELIST, N.RPL_ENDOFINVITELIST, "End of channel invite list"),
}


@command("MODE", min_params=1)
def mode(core: ServerCore, user: User, msg: Message) -> None:
    """MODE <target> [<modestring> [<mode arguments>...]]"""
    target = msg.params[0]
    if is_channel_name(target, CHANTYPES):
        channel = core.visible_channel(user, target)
        if channel is not None:
            _channel_mode(core, user, channel, msg.params[1:])
        return
    other = core.state.find_user(target)
    if other is None:
        core.reply(user, N.ERR_NOSUCHNICK, target, "No such nick/channel")
    elif other is not user:
        core.reply(user, N.ERR_USERSDONTMATCH, "Cannot change mode for other users")
    elif len(msg.params) == 1:
        core.reply(user, N.RPL_UMODEIS, "+" + "".join(sorted(user.modes)))
    else:
        _user_mode(core, user, msg.params[1])


def _user_mode(core: ServerCore, user: User, modestring: str) -> None:
    adding = True
    applied: list[str] = []
    seen: set[str] = set()
    unknown = False
    for ch in modestring:
        if ch in "+-":
            adding = ch == "+"
        elif ch in seen:
            continue  # each letter counts once, so the echoed MODE stays short
        elif ch in "Biw":  # a bot, invisible, receives WALLOPS: each user's own choice
            seen.add(ch)
            if core.state.set_user_mode(user, ch, adding):
                applied.append(("+" if adding else "-") + ch)
        elif ch == "o":
            seen.add(ch)
            if not adding and core.state.set_user_mode(user, "o", False):  # +o: OPER only
                applied.append("-o")
        else:
            unknown = True
    if unknown:
        core.reply(user, N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        user.send(Message("MODE", (user.nick, compact_modes(applied)), user.source).to_bytes())
        if core.cluster is not None:
            core.cluster.user_changed(user)


def _channel_mode(core: ServerCore, user: User, channel: Channel, args: tuple[str, ...],
                  override: bool = False) -> None:
    """Show or change a channel's modes; ``override`` (SAMODE) needs no channel operator."""
    if not args:
        core.reply(user, N.RPL_CHANNELMODEIS, channel.name,
                   *channel.mode_string(user in channel.members))
        core.reply(user, N.RPL_CREATIONTIME, channel.name, str(int(channel.created)))
        return
    modestring, params = args[0], list(args[1:])
    listed = modestring.lstrip("+")
    if len(listed) == 1 and listed in LIST_REPLIES and not params:
        entry, end, text = LIST_REPLIES[listed]
        for mask, (setter, when) in channel.list_of(listed).items():
            core.reply(user, entry, channel.name, mask, setter, str(int(when)))
        core.reply(user, end, channel.name, text)
        return
    if not override and not channel.is_op(user):
        core.not_operator(user, channel)
        return
    # One MODE costs a bounded reply: at most MODE_LETTERS letters are read, at most
    # MODES_PER_COMMAND of them take a parameter (ISUPPORT MODES), a change without parameter
    # counts once, each error is answered once, and the relayed MODE line keeps within 512 bytes.
    run = ModeRun(core, user, channel)
    adding = True
    letters = with_param = 0
    answered: set[str] = set()
    for ch in modestring:
        if ch in "+-":
            adding = ch == "+"
            continue
        letters += 1
        if letters > MODE_LETTERS:
            break
        if ch in answered:
            continue
        spec = CHANNEL_MODES.get(ch)
        if spec is None:
            answered.add(ch)
            core.reply(user, N.ERR_UNKNOWNMODE, ch, "is unknown mode char to me")
            continue
        if not (spec.param_on_set if adding else spec.param_on_unset):
            answered.add(ch)
            spec.apply(run, adding, ch, "")
            continue
        if not params:
            if ch not in LIST_MODES and "461" not in answered:
                answered.add("461")
                core.need_more_params(user, "MODE")
            continue
        if with_param >= MODES_PER_COMMAND:
            break
        with_param += 1
        param = params.pop(0)
        if len(param.encode()) + 1 <= run.room:
            spec.apply(run, adding, ch, param)
    if run.changes:
        core.relay(channel.members, user, "MODE", channel.name,
                   compact_modes(run.changes), *run.params)


def compact_modes(changes: list[str]) -> str:
    """``["+i", "+n", "-k"]`` -> ``"+in-k"``."""
    out: list[str] = []
    sign = ""
    for change in changes:
        if change[0] != sign:
            sign = change[0]
            out.append(sign)
        out.append(change[1])
    return "".join(out)
