"""Questions about the server and its users: MOTD, LUSERS, VERSION, TIME, INFO, ISON, USERHOST,
AWAY, WHO, WHOIS, WHOWAS."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from twistedchat.server.commands.registration import (
    VERSION,
    send_isupport,
    send_lusers,
    send_motd,
)
from twistedchat.server.commands.table import command
from twistedchat.server.state import AWAYLEN, User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import chunks, fit_utf8
from twistedchat.wire.message import MAX_LINE_BYTES, Message, ascii_int
from twistedchat.wire.names import CHANTYPES, is_channel_name, mask_matches

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

#: Most replies a WHO by mask gives a user who is not an IRC operator.
WHO_MATCHES = 500


@command("MOTD")
def motd(core: ServerCore, user: User, msg: Message) -> None:
    """MOTD [<server>]"""
    send_motd(core, user)


@command("LUSERS")
def lusers(core: ServerCore, user: User, msg: Message) -> None:
    """LUSERS"""
    send_lusers(core, user)


@command("VERSION")
def version(core: ServerCore, user: User, msg: Message) -> None:
    """VERSION [<server>]"""
    core.reply(user, N.RPL_VERSION, VERSION, core.config.name, "twistedchat IRC daemon")
    send_isupport(core, user)


@command("TIME")
def time_(core: ServerCore, user: User, msg: Message) -> None:
    """TIME [<server>]"""
    now = datetime.fromtimestamp(core.clock(), tz=timezone.utc)
    core.reply(user, N.RPL_TIME, core.config.name, now.strftime("%A %B %d %Y -- %H:%M:%S UTC"))


@command("INFO")
def info(core: ServerCore, user: User, msg: Message) -> None:
    """INFO [<server>]"""
    for line in (
        f"{VERSION}: an IRC server on Twisted",
        f"Running on {core.config.name}, network {core.config.network}",
    ):
        core.reply(user, N.RPL_INFO, line)
    core.reply(user, N.RPL_ENDOFINFO, "End of INFO list")


@command("ISON", min_params=1)
def ison(core: ServerCore, user: User, msg: Message) -> None:
    """ISON <nickname>{ <nickname>}"""
    nicks = [n for p in msg.params for n in p.split()]
    online = [found.nick for n in nicks if (found := core.state.find_user(n)) and found.registered]
    core.reply_words(user, N.RPL_ISON, " ".join(online))


@command("USERHOST", min_params=1)
def userhost(core: ServerCore, user: User, msg: Message) -> None:
    """USERHOST <nickname>{ <nickname>}"""
    replies = []
    for name in msg.params[:5]:
        found = core.state.find_user(name)
        if found and found.registered:
            oper = "*" if found.is_oper else ""
            away = "-" if found.away else "+"
            replies.append(f"{found.nick}{oper}={away}{found.username}@{found.host}")
    core.reply_words(user, N.RPL_USERHOST, " ".join(replies))


@command("AWAY")
def away(core: ServerCore, user: User, msg: Message) -> None:
    """AWAY [<text>]"""
    text = fit_utf8(msg.params[0], AWAYLEN) if msg.params and msg.params[0] else None
    user.away = text
    if text is None:
        core.reply(user, N.RPL_UNAWAY, "You are no longer marked as being away")
    else:
        core.reply(user, N.RPL_NOWAWAY, "You have been marked as being away")
    notify = [u for u in core.state.neighbours(user) if "away-notify" in u.caps]
    if notify:
        core.relay(notify, user, "AWAY", *((text,) if text is not None else ()))


@command("WHO")
def who(core: ServerCore, user: User, msg: Message) -> None:
    """WHO [<mask>]"""
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    state = core.state
    if is_channel_name(mask, CHANTYPES):
        channel = state.find_channel(mask)
        if channel is not None and (user in channel.members or "s" not in channel.modes):
            member_of = user in channel.members
            multi = "multi-prefix" in user.caps
            for member in channel.members:
                if "i" in member.modes and not member_of and not state.shares_channel(
                    user, member
                ):
                    continue
                _who_reply(core, user, member, channel.name, channel.prefix_of(member, multi))
    else:
        # A mask scans every user: at most WHO_MATCHES replies to one who is not an operator
        # (as Hybrid and ratbox cap it), so one line cannot make the server send the whole network.
        left = WHO_MATCHES if not user.is_oper else len(state.users)
        for other in list(state.registered_users()):
            visible = other is user or "i" not in other.modes or state.shares_channel(user, other)
            if visible and (
                mask in ("*", "0")
                or mask_matches(mask, other.nick)
                or mask_matches(mask, other.host)
            ):
                if not left:
                    core.reply(user, N.ERR_TOOMANYMATCHES, "WHO", mask, "Too many matches")
                    break
                left -= 1
                _who_reply(core, user, other, "*", "")
    core.reply(user, N.RPL_ENDOFWHO, mask, "End of WHO list")


def _who_reply(core: ServerCore, user: User, other: User, channel: str, prefix: str) -> None:
    flags = ("G" if other.away else "H") + ("*" if other.is_oper else "") + prefix
    core.reply(
        user, N.RPL_WHOREPLY, channel, other.username, other.host, core.config.name,
        other.nick, flags, f"0 {other.realname}",
    )


@command("WHOIS")
def whois(core: ServerCore, user: User, msg: Message) -> None:
    """WHOIS [<server>] <nickname>"""
    if not msg.params or not msg.params[-1]:
        core.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    name = msg.params[-1].split(",")[0]
    target = core.state.find_user(name)
    if target is None or not target.registered:
        core.reply(user, N.ERR_NOSUCHNICK, name, "No such nick/channel")
        core.reply(user, N.RPL_ENDOFWHOIS, name, "End of /WHOIS list")
        return
    core.reply(user, N.RPL_WHOISUSER, target.nick, target.username, target.host, "*",
               target.realname)
    multi = "multi-prefix" in user.caps
    channels = [
        channel.prefix_of(target, multi) + channel.name
        for channel in target.channels.values()
        if "s" not in channel.modes or user in channel.members
    ]
    if channels:
        head = f":{core.config.name} {N.RPL_WHOISCHANNELS} {user.nick} {target.nick} :"
        for chunk in chunks(" ".join(channels), MAX_LINE_BYTES - 2 - len(head.encode())):
            core.reply(user, N.RPL_WHOISCHANNELS, target.nick, chunk)
    core.reply(user, N.RPL_WHOISSERVER, target.nick, core.config.name, core.config.network)
    if target.is_oper:
        core.reply(user, N.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
    if target.away:
        core.reply(user, N.RPL_AWAY, target.nick, target.away)
    idle = int(core.clock() - target.last_message)
    core.reply(user, N.RPL_WHOISIDLE, target.nick, str(idle), str(int(target.signon)),
               "seconds idle, signon time")
    core.reply(user, N.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list")


@command("WHOWAS")
def whowas(core: ServerCore, user: User, msg: Message) -> None:
    """WHOWAS <nickname> [<count>]"""
    if not msg.params or not msg.params[0]:
        core.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    name = msg.params[0].split(",")[0]
    count = msg.params[1] if len(msg.params) > 1 else ""
    entries = core.state.whowas_of(name)
    limit = ascii_int(count)
    if limit:
        entries = entries[:limit]
    if not entries:
        core.reply(user, N.ERR_WASNOSUCHNICK, name, "There was no such nickname")
    for entry in entries:
        core.reply(user, N.RPL_WHOWASUSER, entry.nick, entry.username, entry.host, "*",
                   entry.realname)
        until = datetime.fromtimestamp(entry.until, tz=timezone.utc)
        core.reply(user, N.RPL_WHOISSERVER, entry.nick, core.config.name,
                   f"{until:%Y-%m-%d %H:%M:%S} UTC")
    core.reply(user, N.RPL_ENDOFWHOWAS, name, "End of WHOWAS")
