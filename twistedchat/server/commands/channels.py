"""Channel membership and its facts: JOIN, PART, TOPIC, NAMES, LIST, INVITE, KICK."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistedchat.server.commands.markers import send_read_marker
from twistedchat.server.commands.metadata import metadata_on_join
from twistedchat.server.commands.registration import REASONLEN
from twistedchat.server.commands.table import command
from twistedchat.server.state import (
    CHANLIMIT,
    HIGHEST_PREFIX,
    KICKLEN,
    MAXTARGETS,
    MULTI_PREFIX,
    TOPICLEN,
    Channel,
    User,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import chunks, fit_utf8
from twistedchat.wire.message import MAX_LINE_BYTES, Message
from twistedchat.wire.names import valid_channel_name

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

#: Most channels one LIST shows a user who is not an IRC operator.
LIST_MATCHES = 1000


@command("JOIN", min_params=1)
def join(core: ServerCore, user: User, msg: Message) -> None:
    """JOIN <channel>{,<channel>} [<key>{,<key>}]"""
    if msg.params[0] == "0":
        for channel in list(user.channels.values()):
            core.relay(channel.members, user, "PART", channel.name, "Left all channels")
            core.state.part(user, channel)
        return
    names = msg.params[0].split(",")
    if core.cluster is not None and not core.cluster.channel_claims.holds(
            user, names, lambda: core.handle(user, msg)):
        return  # cluster: a channel this JOIN creates is claimed in Redis first; it runs again then
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for index, name in enumerate(names):
        _join_one(core, user, name, keys[index] if index < len(keys) else None)


def _join_one(core: ServerCore, user: User, name: str, key: str | None,
              override: bool = False) -> None:
    """Join one channel; ``override`` (SAJOIN) passes its key, limit, +i and bans."""
    if not valid_channel_name(name):
        core.reply(user, N.ERR_BADCHANNAME, name or "*", "Illegal channel name")
        return
    channel = core.state.find_channel(name)
    if channel is not None and not override:
        if user in channel.members:
            return
        # An invitation opens +i only; key, limit and bans hold for everyone (see invite()).
        if channel.key is not None and key != channel.key:
            core.reply(user, N.ERR_BADCHANNELKEY, channel.name, "Cannot join channel (+k)")
            return
        if channel.limit is not None and len(channel.members) >= channel.limit:
            core.reply(user, N.ERR_CHANNELISFULL, channel.name, "Cannot join channel (+l)")
            return
        if ("i" in channel.modes and not core.state.is_invited(user, channel)
                and not channel.is_invite_excepted(user)):
            core.reply(user, N.ERR_INVITEONLYCHAN, channel.name, "Cannot join channel (+i)")
            return
        if channel.is_banned(user):
            core.reply(user, N.ERR_BANNEDFROMCHAN, channel.name, "Cannot join channel (+b)")
            return
    elif channel is not None and user in channel.members:
        return
    if len(user.channels) >= CHANLIMIT:
        core.reply(user, N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
        return
    channel = core.state.join(user, name, core.clock())
    if core.cluster is not None:
        core.cluster.channel_claims.joined(user, channel)
    extended = [m for m in channel.members if "extended-join" in m.caps]
    if extended:  # extended-join: the account ("*": none) and the real name too
        core.relay(extended, user, "JOIN", channel.name, user.account or "*", user.realname)
        core.relay([m for m in channel.members if "extended-join" not in m.caps], user, "JOIN",
                   channel.name)
    else:
        core.relay(channel.members, user, "JOIN", channel.name)
    if user.away is not None:
        notify = [m for m in channel.members if m is not user and "away-notify" in m.caps]
        if notify:
            core.relay(notify, user, "AWAY", user.away)
    if channel.topic:
        _send_topic(core, user, channel)
    if "draft/read-marker" in user.caps:
        send_read_marker(core, user, channel.name)
    _send_names(core, user, channel)
    metadata_on_join(core, user, channel)


@command("PART", min_params=1)
def part(core: ServerCore, user: User, msg: Message) -> None:
    """PART <channel>{,<channel>} [<reason>]"""
    reason = fit_utf8(msg.params[1], REASONLEN) if len(msg.params) > 1 else None
    for name in msg.params[0].split(","):
        channel = core.joined_channel(user, name)
        if channel is not None:
            params = (channel.name, reason) if reason else (channel.name,)
            core.relay(channel.members, user, "PART", *params)
            core.state.part(user, channel)


def _send_topic(core: ServerCore, user: User, channel: Channel) -> None:
    core.reply(user, N.RPL_TOPIC, channel.name, channel.topic)
    core.reply(
        user, N.RPL_TOPICWHOTIME, channel.name, channel.topic_setter, str(int(channel.topic_time))
    )


@command("TOPIC", min_params=1)
def topic(core: ServerCore, user: User, msg: Message) -> None:
    """TOPIC <channel> [<topic>]"""
    channel = core.visible_channel(user, msg.params[0])
    if channel is None:
        return
    if len(msg.params) == 1:
        if channel.topic:
            _send_topic(core, user, channel)
        else:
            core.reply(user, N.RPL_NOTOPIC, channel.name, "No topic is set")
        return
    if user not in channel.members:
        core.not_on_channel(user, channel)
        return
    if "t" in channel.modes and not channel.is_op(user):
        core.not_operator(user, channel)
        return
    channel.topic = fit_utf8(msg.params[1], TOPICLEN)
    channel.topic_setter = user.source
    channel.topic_time = core.clock()
    core.relay(channel.members, user, "TOPIC", channel.name, channel.topic)


def _send_names(core: ServerCore, user: User, channel: Channel) -> None:
    is_member = user in channel.members
    if is_member or "s" not in channel.modes or user.is_oper:
        multi = "multi-prefix" in user.caps
        full = "userhost-in-names" in user.caps
        if is_member and not multi and not full:
            names = channel.names_text()
        else:
            prefixes = MULTI_PREFIX if multi else HIGHEST_PREFIX
            names = " ".join(
                prefixes[modes] + (member.source if full else member.nick)
                for member, modes in channel.members.items()
                if is_member or "i" not in member.modes or user.is_oper
            )
        symbol = "@" if "s" in channel.modes else "="
        head = f":{core.config.name} {N.RPL_NAMREPLY} {user.nick} {symbol} {channel.name} :"
        room = MAX_LINE_BYTES - 2 - len(head.encode("utf-8"))
        lines = [f"{head}{chunk}\r\n" for chunk in chunks(names, room)]
        if lines:
            user.send("".join(lines).encode("utf-8"))
    core.reply(user, N.RPL_ENDOFNAMES, channel.name, "End of /NAMES list")


@command("NAMES")
def names(core: ServerCore, user: User, msg: Message) -> None:
    """NAMES [<channel>{,<channel>}]"""
    if not msg.params or not msg.params[0]:
        core.reply(user, N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        channel = core.state.find_channel(name)
        if channel is None:
            core.reply(user, N.RPL_ENDOFNAMES, name, "End of /NAMES list")
        else:
            _send_names(core, user, channel)


@command("LIST")
def list_(core: ServerCore, user: User, msg: Message) -> None:
    """LIST [<channel>{,<channel>}]"""
    if msg.params and msg.params[0]:
        found = (core.state.find_channel(n) for n in msg.params[0].split(","))
        channels = [c for c in found if c is not None]
    else:
        channels = list(core.state.channels.values())
    core.reply(user, N.RPL_LISTSTART, "Channel", "Users  Name")
    # At most LIST_MATCHES lines to one who is not an operator: one LIST cannot cost the server
    # a pass over every channel of a large network.
    left = LIST_MATCHES if not user.is_oper else len(channels)
    for channel in channels:
        if "s" in channel.modes and user not in channel.members and not user.is_oper:
            continue
        if not left:
            core.reply(user, N.ERR_TOOMANYMATCHES, "LIST", "Too many matches")
            break
        left -= 1
        core.reply(user, N.RPL_LIST, channel.name, str(len(channel.members)), channel.topic)
    core.reply(user, N.RPL_LISTEND, "End of /LIST")


@command("INVITE", min_params=2)
def invite(core: ServerCore, user: User, msg: Message) -> None:
    """INVITE <nickname> <channel>

    The rule (modern IRC client protocol, Ergo, Solanum, InspIRCd): only a member may invite
    (else 442), and on a +i channel only a channel operator (else 482). An invitation is kept
    only when the channel is +i, and it opens +i alone: key, limit and bans still apply (the part
    Solanum and Ergo agree on; an operator who wants more can lift them). It belongs to the
    invited user, not the nick: gone on quit, on a nick change, once used, or when the channel is
    re-created; at most ``CHANLIMIT`` per user, the oldest dropped first (as Solanum).
    """
    nick, name = msg.params[0], msg.params[1]
    target = core.state.find_user(nick)
    if target is None or not target.registered:
        core.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    channel = core.joined_channel(user, name)
    if channel is None:
        return
    if "i" in channel.modes and not channel.is_op(user):
        core.not_operator(user, channel)
        return
    if target in channel.members:
        core.reply(user, N.ERR_USERONCHANNEL, target.nick, channel.name, "is already on channel")
        return
    if "i" in channel.modes:
        core.state.invite(target, channel)
    core.reply(user, N.RPL_INVITING, target.nick, channel.name)
    core.relay([target], user, "INVITE", target.nick, channel.name)
    if target.away:
        core.reply(user, N.RPL_AWAY, target.nick, target.away)
    notify = [
        m for m in channel.members
        if m is not user and "invite-notify" in m.caps and channel.is_op(m)
    ]
    if notify:
        core.relay(notify, user, "INVITE", target.nick, channel.name)


@command("KICK", min_params=2)
def kick(core: ServerCore, user: User, msg: Message) -> None:
    """KICK <channel> <nickname>{,<nickname>} [<reason>]"""
    channel = core.joined_channel(user, msg.params[0])
    if channel is None:
        return
    if not channel.is_op(user):
        core.not_operator(user, channel)
        return
    reason = fit_utf8(msg.params[2] if len(msg.params) > 2 and msg.params[2] else user.nick,
                      KICKLEN)
    for nick in msg.params[1].split(",")[:MAXTARGETS]:
        target = core.state.find_user(nick)
        if target is None or target not in channel.members:
            core.reply(
                user, N.ERR_USERNOTINCHANNEL, nick, channel.name, "They aren't on that channel"
            )
            continue
        core.relay(channel.members, user, "KICK", channel.name, target.nick, reason)
        core.state.part(target, channel)
        if channel.folded not in core.state.channels:
            break
