"""IRC operators: OPER to become one, KILL to disconnect a user, WALLOPS to tell users +w."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistedchat.server.commands.registration import REASONLEN
from twistedchat.server.commands.table import command
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_message, fit_utf8
from twistedchat.wire.message import Message

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore


@command("OPER", min_params=2)
def oper(core: ServerCore, user: User, msg: Message) -> None:
    """OPER <name> <password>"""
    name, password = msg.params[0], msg.params[1]
    if not core.config.opers:
        core.reply(user, N.ERR_NOOPERHOST, "No O-lines for your host")
        return
    if core.config.opers.get(name) != password:
        core.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        return
    if core.state.set_user_mode(user, "o", True):
        user.send(Message("MODE", (user.nick, "+o"), user.source).to_bytes())
    core.reply(user, N.RPL_YOUREOPER, "You are now an IRC operator")


@command("KILL", min_params=1, oper_only=True)
def kill(core: ServerCore, user: User, msg: Message) -> None:
    """KILL <nickname> [<reason>]"""
    target = core.state.find_user(msg.params[0])
    if target is None:
        core.reply(user, N.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
        return
    reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else "No reason"
    reason = fit_utf8(reason, REASONLEN - len(user.nick) - 12)  # fits in "Killed (nick (...))"
    target.send(fit_message(Message("KILL", (target.nick, reason), user.source)))
    core.quit(target, f"Killed ({user.nick} ({reason}))")


@command("WALLOPS", min_params=1, oper_only=True)
def wallops(core: ServerCore, user: User, msg: Message) -> None:
    """WALLOPS <text>

    To every user with user mode +w (kept in ``ChatState.wallops``, not found by a scan).
    """
    text = fit_utf8(msg.params[0], REASONLEN)
    core.relay(list(core.state.wallops), user, "WALLOPS", text)
