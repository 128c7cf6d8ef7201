"""Account commands, added to a core's table when it has a store (server/accounts.py):
AUTHENTICATE, REGISTER, VERIFY, CHATHISTORY, and the wrappers that keep nick ownership and
registered channels; NickServ and ChanServ are in commands/services.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.server.accounts import SERVICES
from twistedchat.server.commands.table import Command
from twistedchat.server.relay import server_time
from twistedchat.server.sasl import MECHANISMS, CheckPassword, Failed, SaslExchange, Send, Succeeded
from twistedchat.server.state import User
from twistedchat.storage.history import ChathistoryError, parse_chathistory
from twistedchat.storage.model import (
    Account,
    AccountExists,
    StoreError,
    UnknownMessageId,
)
from twistedchat.storage.passwords import PasswordsBusy
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold, is_channel_name, valid_nick

if TYPE_CHECKING:
    from twistedchat.server.accounts import Accounts
    from twistedchat.server.core import ServerCore

log = Logger()
Handler = Callable[["ServerCore", User, Message], None]


def _accounts(core: ServerCore) -> Accounts:
    accounts = core.accounts
    assert accounts is not None
    return accounts


# -- SASL ----------------------------------------------------------------------------------------
def authenticate(core: ServerCore, user: User, msg: Message) -> None:
    """AUTHENTICATE <mechanism|payload|*>"""
    accounts = _accounts(core)
    if "sasl" not in user.caps:
        core.reply(user, N.ERR_SASLFAIL, "SASL authentication failed: enable the sasl capability")
        return
    param = msg.params[0]
    exchange = accounts.exchanges.get(user)
    if exchange is None or exchange.finished:
        if user.account is not None:
            core.reply(user, N.ERR_SASLALREADY, "You have already authenticated using SASL")
            return
        if param == "*":
            core.reply(user, N.ERR_SASLABORTED, "SASL authentication aborted")
            return
        if len(accounts.exchanges) >= 1000:
            live = core.state.connections
            accounts.exchanges = {u: e for u, e in accounts.exchanges.items()
                                  if u in live and not e.finished}
        exchange = accounts.exchanges[user] = SaslExchange(
            accounts.store.scram_credentials, accounts.limiter, user.real_host, accounts.clock.seconds)
    _run_steps(core, user, exchange, exchange.authenticate(param))


def _run_steps(core: ServerCore, user: User, exchange: SaslExchange, steps: list[Any]) -> None:
    accounts = _accounts(core)
    for step in steps:
        if isinstance(step, Send):
            user.send(Message("AUTHENTICATE", (step.param,), core.config.name).to_bytes())
        elif isinstance(step, Succeeded):
            accounts.exchanges.pop(user, None)
            accounts.log_in(user, step.account)
            core.reply(user, N.RPL_SASLSUCCESS, "SASL authentication successful")
        elif isinstance(step, Failed):
            accounts.exchanges.pop(user, None)
            if step.list_mechanisms:
                core.reply(user, N.RPL_SASLMECHS, ",".join(MECHANISMS),
                           "are available SASL mechanisms")
            core.reply(user, step.numeric, step.reason)
        elif isinstance(step, CheckPassword):
            work = check_password(accounts, step.account, step.password)

            def checked(account: str | None, exchange: SaslExchange = exchange) -> None:
                if user in core.state.connections:
                    _run_steps(core, user, exchange, exchange.password_checked(account))

            work.addCallback(checked)
            core.hold_input(user, work)


def check_password(accounts: Accounts, name: str, password: str) -> Deferred[str | None]:
    """The account's name if ``password`` is right, else None (never fails)."""

    def named(found: Account | None) -> str | None:
        return found.name if found is not None else None

    def failed(failure: Failure) -> str | None:
        if not failure.check(PasswordsBusy):
            log.failure("checking a password", failure)
        return None

    return accounts.store.verify_password(name, password).addCallbacks(named, failed)


# -- draft/account-registration ------------------------------------------------------------------
def register(core: ServerCore, user: User, msg: Message) -> None:
    """REGISTER <account|*> <email|*> <password>"""
    _accounts(core)
    name = user.nick if msg.params[0] == "*" else msg.params[0]
    if len(msg.params) < 3:
        core.fail(user, "REGISTER", "NEED_MORE_PARAMS", "REGISTER", "Not enough parameters")
        return
    password = msg.params[2]
    if user.account is not None:
        core.fail(user, "REGISTER", "ALREADY_AUTHENTICATED", name, "You are already logged in")
        return
    if name == "*" or not valid_nick(name):
        core.fail(user, "REGISTER", "BAD_ACCOUNT_NAME", name, "That account name is not valid")
        return
    if user.registered and casefold(name) != user.folded:
        core.fail(user, "REGISTER", "ACCOUNT_NAME_MUST_BE_NICK", name,
                  "Register your current nick as the account name")
        return
    create_and_log_in(core, user, name, password,
                      lambda ok, why: user.send(Message(
                          "REGISTER", ("SUCCESS", name, "Account created"),
                          core.config.name).to_bytes())
                      if ok else core.fail(user, "REGISTER", why[0], name, why[1]))


def create_and_log_in(core: ServerCore, user: User, name: str, password: str,
                      answer: Callable[[bool, tuple[str, str]], None]) -> None:
    """Create an account and log ``user`` in; ``answer(ok, (code, text))`` when done."""
    accounts = _accounts(core)
    if casefold(name) in SERVICES:
        answer(False, ("BAD_ACCOUNT_NAME", "That name is reserved for services"))
        return
    if not accounts.password_budget(user):
        answer(False, ("TEMPORARILY_UNAVAILABLE", "Too many account operations on this connection"))
        return
    if accounts.creations.wait(None, user.real_host, accounts.clock.seconds()) > 0:
        answer(False, ("TEMPORARILY_UNAVAILABLE", "Too many accounts created from your address; "
                       "try again later"))
        return
    work = accounts.store.create_account(name, password, core.clock())

    def created(account: Any) -> None:
        if user not in core.state.connections:
            return
        accounts.creations.failed(None, user.real_host, accounts.clock.seconds())  # counts one
        answer(True, ("", ""))
        accounts.log_in(user, account.name)
        for kept in (core.state.metadata, core.state.read_markers):
            keep_all = getattr(kept, "keep_all", None)
            if keep_all is not None:
                keep_all(user.owner)

    def failed(failure: Any) -> None:
        if user not in core.state.connections:
            return
        if failure.check(AccountExists):
            answer(False, ("ACCOUNT_EXISTS", "That account name is taken"))
        elif failure.check(PasswordsBusy):
            answer(False, ("TEMPORARILY_UNAVAILABLE", "The server is busy; try again later"))
        elif failure.check(StoreError):
            code = "WEAK_PASSWORD" if "password" in str(failure.value).lower() else "BAD_ACCOUNT_NAME"
            answer(False, (code, str(failure.value)))
        else:
            log.failure("creating an account", failure)
            answer(False, ("TEMPORARILY_UNAVAILABLE", "Could not create the account"))

    work.addCallbacks(created, failed)
    core.hold_input(user, work)


def verify(core: ServerCore, user: User, msg: Message) -> None:
    """VERIFY <account> <code>"""
    core.fail(user, "VERIFY", "INVALID_CODE", msg.params[0],
              "This server does not verify accounts by e-mail: nothing to verify")


# -- CHATHISTORY ---------------------------------------------------------------------------------
def chathistory(core: ServerCore, user: User, msg: Message) -> None:
    """CHATHISTORY <subcommand> <target> <selector> [<selector>] <limit>"""
    accounts = _accounts(core)
    label = msg.tags.get("label") if "labeled-response" in user.caps else None
    try:
        request = parse_chathistory(msg.params, accounts.history_limit)
    except ChathistoryError as error:
        core.fail(user, "CHATHISTORY", error.code, *error.context, error.description)
        return
    if request.subcommand == "TARGETS":
        assert request.span is not None
        start, end = request.span
        channels = [c.name for c in user.channels.values()]
        work: Deferred[Any] = accounts.store.history_targets(
            channels, user.account, start, end, request.limit)

        def listed(found: list[Any]) -> None:
            name = core.config.name
            lines = []
            for activity in found:
                target = activity.target
                if activity.parties is not None and user.account is not None:
                    me = casefold(user.account)
                    target = next((p for p in activity.parties if p != me), me)
                lines.append(Message("CHATHISTORY", ("TARGETS", target, _stamp(activity.latest)),
                                     name).to_bytes())
            accounts.send_batch(user, "draft/chathistory-targets", (), lines, label)

        work.addCallbacks(listed, lambda f: _history_failed(core, user, request.subcommand, f))
        core.hold_input(user, work)
        return
    assert request.target is not None and request.query is not None
    target = request.target
    conversation = accounts.may_read(user, target)
    if conversation is None:
        core.fail(user, "CHATHISTORY", "INVALID_TARGET", request.subcommand, target,
                  "You may not read the history of that target")
        return
    work = accounts.store.history(conversation, request.query)

    def answered(found: list[Any]) -> None:
        accounts.send_history(user, target, found, label)

    def failed(failure: Any) -> None:
        if failure.check(UnknownMessageId):  # not of this conversation (or pruned): nothing
            answered([])
        else:
            _history_failed(core, user, request.subcommand, failure)

    work.addCallbacks(answered, failed)
    core.hold_input(user, work)


def _stamp(seconds: float) -> str:
    return "timestamp=" + server_time(seconds)


def _history_failed(core: ServerCore, user: User, subcommand: str, failure: Any) -> None:
    log.failure("a history query", failure)
    core.fail(user, "CHATHISTORY", "MESSAGE_ERROR", subcommand, "History is unavailable now")


# -- wrappers of existing commands ---------------------------------------------------------------
def _nick(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    if msg.params and casefold(msg.params[0]) in SERVICES:
        core.reply(user, N.ERR_ERRONEUSNICKNAME, msg.params[0], "That nick is reserved for services")
        return
    handler(core, user, msg)
    _accounts(core).check_nick(user)


def _then_check_nick(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    handler(core, user, msg)
    _accounts(core).check_nick(user)


def _quit(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    _accounts(core).forget(user)
    handler(core, user, msg)


def _join(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    accounts = _accounts(core)
    revived = [accounts.revive(name) for name in msg.params[0].split(",")[:20]]
    handler(core, user, msg)
    for channel in revived:
        if channel is not None and not channel.members \
                and core.state.channels.get(channel.folded) is channel:
            del core.state.channels[channel.folded]  # nobody got in
    for name in msg.params[0].split(","):
        channel = core.state.find_channel(name)
        if channel is not None and user in channel.members:
            accounts.status_on_join(user, channel)


def _save_after(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    handler(core, user, msg)
    if msg.params and is_channel_name(msg.params[0]):
        channel = core.state.find_channel(msg.params[0])
        if channel is not None:
            accounts = _accounts(core)
            if msg.command == "MODE":
                accounts.enforce_mode_lock(channel)
            accounts.save_channel(channel)


WRAPPED: dict[str, Callable[..., None]] = {
    "NICK": _nick, "USER": _then_check_nick, "CAP": _then_check_nick,
    "QUIT": _quit, "JOIN": _join, "TOPIC": _save_after, "MODE": _save_after,
}

ACCOUNT_COMMANDS = (
    Command("AUTHENTICATE", authenticate, 1, pre_registration=True),
    Command("REGISTER", register, 2, pre_registration=True),
    Command("VERIFY", verify, 2, pre_registration=True),
    Command("CHATHISTORY", chathistory, 1),
)
