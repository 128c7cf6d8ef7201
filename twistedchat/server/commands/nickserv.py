"""NickServ: accounts and the nicks they own, each command declared once in :data:`NICKSERV` with
its syntax. The password checks (IDENTIFY, DROP, SET PASSWORD) run in a thread, braked per
account, address and connection; every other command is a dict lookup or two."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.server.commands.accounts import check_password, create_and_log_in
from twistedchat.server.commands.service_base import Request, ServiceCommand, service_help, utc
from twistedchat.storage.model import StoreError
from twistedchat.storage.passwords import PasswordsBusy, password_problem
from twistedchat.wire.names import casefold

log = Logger()


def _with_password(request: Request, name: str, password: str, refused: str,
                   then: Callable[[str], Deferred[Any] | None]) -> None:
    """Check ``name``'s password in a thread, braked like a login (per account, per address,
    per connection); ``then(account)`` when it is right, ``refused`` said when it is not. The
    asker's later lines wait for the answer, and for the Deferred ``then`` returns, if any."""
    core, user, accounts = request.core, request.user, request.accounts
    wait = accounts.limiter.wait(name, user.real_host, accounts.clock.seconds())
    if wait > 0:
        request.say(f"Too many failed attempts; try again in {int(wait) + 1} s.")
        return
    if not accounts.password_budget(user):
        request.say("Too many password attempts on this connection.")
        return
    work = check_password(accounts, name, password)

    def checked(found: str | None) -> Deferred[Any] | None:
        if user not in core.state.connections:
            return None
        now = accounts.clock.seconds()
        if found is None:
            accounts.limiter.failed(name, user.real_host, now)
            request.say(refused)
            return None
        accounts.limiter.succeeded(found, now)
        return then(found)

    work.addCallback(checked)
    core.hold_input(user, work)



def ns_register(request: Request) -> None:
    """Register the asker's nick as an account and log in."""
    user = request.user
    if not request.args:
        request.say("Syntax: " + NICKSERV["REGISTER"].syntax)
    elif user.account is not None:
        request.say(f"You are already logged in as {user.account}.")
    else:
        create_and_log_in(request.core, user, user.nick, request.args[0],
                          lambda ok, why: request.say(f"{user.nick} is now registered to you." if ok
                                                      else f"Registration failed: {why[1]}"))


def ns_identify(request: Request) -> None:
    """Log in with an account's password."""
    args = request.args
    if not args:
        request.say("Syntax: " + NICKSERV["IDENTIFY"].syntax)
        return
    name, password = (args[0], args[1]) if len(args) > 1 else (request.user.nick, args[0])

    def logged_in(account: str) -> None:
        request.accounts.log_in(request.user, account)
        request.say(f"You are now identified as {account}.")

    _with_password(request, name, password, "Invalid account or password.", logged_in)


def ns_ghost(request: Request) -> None:
    """Disconnect someone using a nick the asker's account owns."""
    core, user = request.core, request.user
    if not request.args:
        request.say("Syntax: " + NICKSERV["GHOST"].syntax)
        return
    nick = request.args[0]
    target = core.state.users.get(casefold(nick))
    owner = request.accounts.store.nick_owner(nick)
    if request.me is None or owner != request.me:
        request.say("You must be identified to the account that owns that nick.")
    elif target is user:
        request.say(f"You are {user.nick}: GHOST disconnects another connection using a nick "
                    "your account owns.")
    elif target is None:
        request.say(f"{nick} is not online.")
    else:
        reason = f"GHOST command used by {user.nick}"
        if core.cluster is not None and core.cluster.is_remote(target):
            core.cluster.disconnect_remote(target, reason)  # its own node disconnects it
        else:
            core.quit(target, reason)
        request.say(f"{nick} has been disconnected.")


def ns_info(request: Request) -> None:
    """When an account was registered and the nicks it owns."""
    store = request.accounts.store
    name = request.args[0] if request.args else (request.user.account or request.user.nick)
    account = store.account(name)
    if account is None:
        request.say(f"{name} is not registered.")
        return
    request.say(f"{account.name} registered {utc(account.created)}; nicks: "
                f"{', '.join(store.nicks_of(account.name))}")


def ns_drop(request: Request) -> None:
    """Delete the asker's account (its password confirms), its nicks and the channels it founded."""
    core, user = request.core, request.user
    if user.account is None:
        request.say("You are not identified.")
        return
    if not request.args:
        request.say("Syntax: " + NICKSERV["DROP"].syntax + " (your password confirms it)")
        return
    name = user.account

    def confirmed(account: str) -> None:
        store = request.accounts.store
        if not _still_identified(request, account):
            request.say(f"{name} was not dropped: you are no longer identified to it.")
            return
        try:
            dropped = store.drop_account(account)
        except StoreError as error:
            request.say(f"{name} was not dropped: {error}")
            return
        for session in [user, *core.state.other_sessions(user)]:
            core.set_account(session, None)
        request.say(f"The account {name} has been dropped"
                    + (f", and with it the channels {', '.join(dropped)}." if dropped else "."))

    _with_password(request, name, request.args[0],
                   f"Invalid password: the account {name} was not dropped.", confirmed)


def _still_identified(request: Request, account: str) -> bool:
    """Whether the asker is still logged in to ``account`` and it still exists (a password
    check ran in a thread meanwhile)."""
    user = request.user
    return user.account is not None and casefold(user.account) == casefold(account) \
        and request.accounts.store.account(account) is not None


def ns_set(request: Request) -> None:
    """Change the asker's password: the current one confirms it (checked like a login)."""
    args, user = request.args, request.user
    if len(args) != 3 or args[0].upper() != "PASSWORD":
        request.say("Syntax: " + NICKSERV["SET"].syntax)
        return
    if user.account is None:
        request.say("You are not identified.")
        return
    current, new = args[1], args[2]
    problem = password_problem(new)
    if problem is not None:  # said before the current password is checked: no guess spent
        request.say(f"Password not changed: {problem}.")
        return
    name = user.account

    def confirmed(account: str) -> Deferred[Any] | None:
        if not _still_identified(request, account):
            request.say(f"Password not changed: you are no longer identified to {name}.")
            return None

        def failed(failure: Failure) -> None:
            if failure.check(PasswordsBusy):
                request.say("Password not changed: the server is busy; try again later.")
            elif failure.check(StoreError):
                request.say(f"Password not changed: {failure.getErrorMessage()}.")
            else:
                log.failure("changing a password", failure)
                request.say("Password not changed: the server could not keep it.")

        changing = request.accounts.store.set_password(account, new)
        return changing.addCallbacks(lambda _: request.say("Password changed."), failed)

    _with_password(request, name, current,
                   "Invalid password: your password was not changed.", confirmed)


#: NickServ's commands, in the order HELP lists them.
NICKSERV: dict[str, ServiceCommand] = {
    "REGISTER": ServiceCommand("REGISTER <password> [email]",
                               "register your current nick as an account", ns_register),
    "IDENTIFY": ServiceCommand("IDENTIFY [account] <password>", "log in to an account",
                               ns_identify),
    "GHOST": ServiceCommand("GHOST <nick>",
                            "disconnect whoever uses a nick your account owns", ns_ghost),
    "INFO": ServiceCommand("INFO [account]", "when an account was registered, its nicks",
                           ns_info),
    "DROP": ServiceCommand("DROP <password>", "delete your account, its nicks and the "
                           "channels it founded", ns_drop),
    "SET": ServiceCommand("SET PASSWORD <current password> <new password>",
                          "change your password (the current one confirms it)", ns_set),
}
NICKSERV["HELP"] = ServiceCommand("HELP [command]", "this list",
                                  service_help(NICKSERV, "NickServ"))
