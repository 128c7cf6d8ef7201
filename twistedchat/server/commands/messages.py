"""Messages between users: PRIVMSG, NOTICE and TAGMSG, the server's hot path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from twistedchat.server.commands.table import command
from twistedchat.server.state import MAXTARGETS, User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_utf8
from twistedchat.wire.message import MAX_LINE_BYTES, Message
from twistedchat.wire.names import CHANTYPES, is_channel_name, mask_matches

if TYPE_CHECKING:
    from twistedchat.server.channel import Channel
    from twistedchat.server.core import ServerCore

#: Membership prefixes a target may carry to reach only those members (ISUPPORT STATUSMSG).
STATUSMSG = "@+"


@command("PRIVMSG")
def privmsg(core: ServerCore, user: User, msg: Message) -> None:
    """PRIVMSG <target>{,<target>} <text>"""
    _message(core, user, msg, notice=False)


@command("NOTICE")
def notice(core: ServerCore, user: User, msg: Message) -> None:
    """NOTICE <target>{,<target>} <text>"""
    _message(core, user, msg, notice=True)


@command("TAGMSG")
def tagmsg(core: ServerCore, user: User, msg: Message) -> None:
    """TAGMSG <target>{,<target>}"""
    if "message-tags" not in user.caps:
        core.reply(user, N.ERR_UNKNOWNCOMMAND, "TAGMSG", "Unknown command")
        return
    _message(core, user, msg, notice=True, tag_only=True)


def _message(
    core: ServerCore, user: User, msg: Message, notice: bool, tag_only: bool = False
) -> None:
    """Send to each target: one encode per channel, queued on every member's outbox."""
    name = msg.command
    if not msg.params or not msg.params[0]:
        if not notice:
            core.reply(user, N.ERR_NORECIPIENT, f"No recipient given ({name})")
        return
    if not tag_only and (len(msg.params) < 2 or not msg.params[1]):
        if not notice:
            core.reply(user, N.ERR_NOTEXTTOSEND, "No text to send")
        return
    text = msg.params[1] if not tag_only else None
    # Relayed as ":nick!user@host PRIVMSG target :text" each line must fit in 512 bytes: the
    # text is cut for each target on its own, so a long bogus target costs the others nothing.
    overhead = len(f":{user.source} {name}  :\r\n".encode())
    text_bytes = len(text.encode()) if text is not None else 0
    client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")} or None
    if user.is_bot:  # IRCv3 bot-mode: in the message-tags encoding, built once per message
        client_tags = {**(client_tags or {}), "bot": ""}
    state = core.state
    user.last_message = core.clock()
    if core.cluster is not None:
        core.cluster.spoke(user)  # other nodes' WHOIS idle time (at most one event a minute)
    targets = msg.params[0].split(",")
    if len(targets) > MAXTARGETS:
        if not notice:
            core.reply(user, N.ERR_TOOMANYTARGETS, targets[MAXTARGETS], "Too many targets")
        targets = targets[:MAXTARGETS]
    echo = "echo-message" in user.caps
    for target_name in targets:
        recipients: Iterable[User]
        target = None
        skip = None
        status = target_name[:1] if target_name[:1] in STATUSMSG else ""
        if status:  # STATUSMSG: "@#chan" to its operators, "+#chan" to its voiced and operators
            target_name = target_name[1:]
        on_channel = is_channel_name(target_name, CHANTYPES)
        channel = state.find_channel(target_name) if on_channel else None
        if channel is not None:
            if not channel.can_speak(user):
                if not notice:
                    core.reply(user, N.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel")
                continue
            target_name = status + channel.name
            if status:
                recipients = status_members(channel, status)
                if echo and user not in recipients:
                    recipients.append(user)
                if tag_only:
                    recipients = [m for m in recipients if "message-tags" in m.caps]
            elif tag_only:
                recipients = [m for m in channel.members.local if "message-tags" in m.caps]
            else:
                recipients = channel.members.local  # (other nodes deliver to their own)
            skip = None if echo else user
        elif target_name[:1] == "$" and not status:
            masked = _server_mask_recipients(core, user, target_name, notice)
            if masked is None:
                continue
            recipients = masked
            skip = None if echo else user
        else:
            target_name = status + target_name
            target = None if on_channel or status else state.find_user(target_name)
            if target is None or not target.registered:
                if not notice:
                    core.reply(user, N.ERR_NOSUCHNICK, target_name, "No such nick/channel")
                continue
            target_name = target.nick
            recipients = [target] if not tag_only or "message-tags" in target.caps else []
            if echo and target is not user:
                recipients.append(user)
        if text is None:
            params: tuple[str, ...] = (target_name,)
        else:
            room = MAX_LINE_BYTES - overhead - len(target_name.encode())
            params = (target_name, text if text_bytes <= room else fit_utf8(text, room))
        core.relay(recipients, user, name, *params, client_tags=client_tags, skip=skip,
                   msgid=core.next_msgid())
        if target is not None and target.away and not notice:
            core.reply(user, N.RPL_AWAY, target.nick, target.away)


def status_members(channel: Channel, status: str) -> list[User]:
    """The members a STATUSMSG target reaches: ``@`` its operators, ``+`` voiced and operators."""
    wanted = "o" if status == "@" else "ov"
    return [m for m, p in channel.members.items() if any(mode in wanted for mode in p)]


def _server_mask_recipients(core: ServerCore, user: User, target: str,
                            notice: bool) -> list[User] | None:
    """``$*`` / ``$$*`` (a server mask): every registered user, for an operator only.

    481 for anyone else and 402 for a mask that does not match this server (both even for a
    NOTICE: the sender must learn its global notice went nowhere).
    """
    if not user.is_oper:
        core.reply(user, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return None
    mask = target[2:] if target.startswith("$$") else target[1:]
    if not mask or not mask_matches(mask, core.config.name):
        core.reply(user, N.ERR_NOSUCHSERVER, target, "No such server")
        return None
    return list(core.state.registered_users())
