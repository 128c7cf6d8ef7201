"""IRC operators: OPER to become one (argon2id, in a thread), KILL to disconnect a user, WALLOPS."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.server.audit import audit
from twistedchat.server.commands.registration import REASONLEN
from twistedchat.server.commands.table import command
from twistedchat.server.config import OPER_PERMISSIONS
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_message, fit_utf8
from twistedchat.wire.message import Message

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

log = Logger()


#: Seconds before a failed OPER is answered (the client's later lines wait too): guessing is slow.
OPER_FAIL_DELAY = 3.0
#: Failed OPERs after which the connection is closed.
OPER_FAILS_ALLOWED = 3


@command("OPER", min_params=2)
def oper(core: ServerCore, user: User, msg: Message) -> None:
    """OPER <name> <password>

    ``[[oper]]`` accounts: the user's real and cloaked ``user@host`` must match one of the
    account's host masks, its TLS client certificate one of its fingerprints (if it lists any),
    and the password its argon2id hash, checked in a thread while the client's later lines
    wait (``core.hold_input``). ``--oper``/``oper-file`` accounts compare plain text.
    """
    name, password = msg.params[0], msg.params[1]
    config = core.config
    account = config.oper_accounts.get(name)
    if account is None:
        legacy = config.opers.get(name)
        if legacy is None:
            _oper_failed(core, user, name, "no such operator", N.ERR_NOOPERHOST)
        elif hmac.compare_digest(legacy.encode(), password.encode()):
            _become_oper(core, user, name, frozenset(OPER_PERMISSIONS))
        else:
            _oper_failed(core, user, name, "wrong password", N.ERR_PASSWDMISMATCH)
        return
    mask = next((m for m in core.ban_masks(user) if account.allows(m)), None)
    if mask is None:
        _oper_failed(core, user, name, "host not allowed", N.ERR_NOOPERHOST)
        return
    if not account.allows_certificate(core.client_fingerprint(user)):
        _oper_failed(core, user, name, "certificate not allowed", N.ERR_NOOPERHOST)
        return
    permissions = (config.oper_classes.get(account.oper_class, frozenset())
                   if account.oper_class else frozenset(OPER_PERMISSIONS))

    def checked(ok: bool) -> object:
        if user not in core.state.connections:
            return None
        if ok:
            _become_oper(core, user, name, permissions)
            return None
        return _oper_failed(core, user, name, "wrong password", N.ERR_PASSWDMISMATCH)

    def broken(failure: Failure) -> None:
        log.failure("checking the password of operator {name} failed", failure, name=name)
        if user in core.state.connections:
            core.reply(user, N.ERR_UNKNOWNERROR, "OPER", "Internal error; the server logged it")

    work = core.verify_oper(config.oper_accounts, name, password, mask)
    work.addCallback(checked).addErrback(broken)
    core.hold_input(user, work)


def _become_oper(core: ServerCore, user: User, name: str, permissions: frozenset[str]) -> None:
    user.privileges = permissions
    if core.state.set_user_mode(user, "o", True):
        user.send(Message("MODE", (user.nick, "+o"), user.source).to_bytes())
        if core.cluster is not None:
            core.cluster.user_changed(user)
    core.reply(user, N.RPL_YOUREOPER, "You are now an IRC operator")
    audit("oper", nick=user.nick, address=user.real_host, oper=name)


def _oper_failed(core: ServerCore, user: User, name: str, why: str,
                 code: str) -> Deferred[None] | None:
    """Count and log a failed OPER; answer it after :data:`OPER_FAIL_DELAY` (the client's input
    waits meanwhile) and close the connection after :data:`OPER_FAILS_ALLOWED` failures."""
    core.counters["oper_failures"] = core.counters.get("oper_failures", 0) + 1
    audit("oper-failed", nick=user.nick, address=user.real_host, oper=name, why=why)
    failures = core.oper_failures[user] = core.oper_failures.get(user, 0) + 1

    def answer() -> None:
        if user not in core.state.connections:
            return
        text = "No O-lines for your host" if code == N.ERR_NOOPERHOST else "Password incorrect"
        core.reply(user, code, text)
        if failures >= OPER_FAILS_ALLOWED:
            core.quit(user, "Too many failed OPER attempts")

    if core.timer is None:
        answer()
        return None
    delayed: Deferred[None] = deferLater(core.timer, OPER_FAIL_DELAY, answer)
    core.hold_input(user, delayed)
    return delayed


@command("KILL", min_params=1, oper_only=True)
def kill(core: ServerCore, user: User, msg: Message) -> None:
    """KILL <nickname> [<reason>]"""
    if not core.permitted(user, "kill"):
        return
    target = core.state.find_user(msg.params[0])
    if target is None:
        core.reply(user, N.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
        return
    reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else "No reason"
    reason = fit_utf8(reason, REASONLEN - len(user.nick) - 12)  # fits in "Killed (nick (...))"
    audit("kill", by=user.nick, nick=target.nick, address=target.real_host, reason=reason)
    quit_reason = f"Killed ({user.nick} ({reason}))"
    if core.cluster is not None and core.cluster.is_remote(target):
        # Its own node sends the KILL and the QUIT (everyone sees that QUIT once).
        core.cluster.disconnect_remote(target, quit_reason, user.source, reason)
        return
    target.send(fit_message(Message("KILL", (target.nick, reason), user.source)))
    core.quit(target, quit_reason)


@command("WALLOPS", min_params=1, oper_only=True)
def wallops(core: ServerCore, user: User, msg: Message) -> None:
    """WALLOPS <text>

    To every user with user mode +w (kept in ``ChatState.wallops``, not found by a scan).
    """
    text = fit_utf8(msg.params[0], REASONLEN)
    core.relay(list(core.state.wallops), user, "WALLOPS", text)
