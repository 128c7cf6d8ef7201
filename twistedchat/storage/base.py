"""The store interface the server calls, and the at-hand half every store shares.

Accounts, nick ownership and registered channels are small: every store keeps them in memory (loaded
at start), answers lookups synchronously and records each change through ``_changed`` for the
backend to write behind. Only password work (a thread) and history queries return Deferreds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred, maybeDeferred, succeed

from twistedchat.storage import passwords
from twistedchat.storage.history import HistoryQuery, TargetActivity
from twistedchat.storage.model import (
    ACCESS_LEVELS,
    MAX_ACCESS_ENTRIES,
    MAX_BANS,
    MAX_DESCRIPTION_BYTES,
    MAX_NICKS_PER_ACCOUNT,
    Account,
    AccountExists,
    Ban,
    ChannelAlreadyRegistered,
    ChannelNotRegistered,
    HistoryLine,
    ListFull,
    NickOwned,
    NoSuchAccount,
    RegisteredChannel,
    ScramCredentials,
    StoreError,
)
from twistedchat.wire.names import casefold, valid_channel_name, valid_nick

#: The RegisteredChannel fields ``update_channel`` may change.
CHANNEL_STATE_FIELDS = frozenset(
    {"topic", "topic_setter", "topic_time", "modes", "key", "limit", "bans", "founder",
     "description", "keep_topic", "mlock_on", "mlock_off", "restricted"}
)


class OwnedNick(NamedTuple):
    """A nick an account owns: the nick as registered and the owner's casefolded name."""

    nick: str
    account: str
    since: float


def _check_mlock(on: str, off: str) -> None:
    """Mode locks are distinct letters, none both locked on and off (``StoreError``)."""
    for letters in (on, off):
        if not (letters.isascii() and letters.isalpha() or not letters) \
                or len(set(letters)) != len(letters):
            raise StoreError(f"a mode lock is distinct mode letters, not {letters!r}")
    if set(on) & set(off):
        raise StoreError("a mode cannot be locked both on and off")


class Store:
    """Accounts, nick ownership, registered channels and history; subclasses add the persistence."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._nicks: dict[str, OwnedNick] = {}
        self._channels: dict[str, RegisteredChannel] = {}
        #: account names being created (their password is hashing in a thread)
        self._creating: set[str] = set()

    # -- what backends provide -------------------------------------------------------------
    def _changed(self, kind: str, key: Any, value: Any) -> None:
        """Record that ``kind`` ("account", "nick", "channel", "metadata", "marker") ``key`` is
        now ``value`` (None: gone); kind "owner" deletes all of an owner's metadata and markers."""

    def append_history(self, line: HistoryLine) -> None:
        """Store a PRIVMSG/NOTICE line (written behind: returns at once)."""
        raise NotImplementedError

    def history(self, conversation: str, query: HistoryQuery) -> Deferred[list[HistoryLine]]:
        """Answer a CHATHISTORY query; sees every line appended before the call.

        Fails with ``UnknownMessageId`` when a ``msgid=`` selector is not of this conversation.
        """
        raise NotImplementedError

    def history_targets(
        self, channels: Collection[str], account: str | None, start: float, end: float, limit: int
    ) -> Deferred[list[TargetActivity]]:
        """CHATHISTORY TARGETS: the given channels' conversations and ``account``'s private ones
        with a line strictly between ``start`` and ``end``, by latest line (descending if
        start > end), at most ``limit``. Names in any case."""
        keys = {casefold(channel) for channel in channels}
        return self._targets(keys, None if account is None else casefold(account), start, end, limit)

    def _targets(
        self, channels: set[str], account: str | None, start: float, end: float, limit: int
    ) -> Deferred[list[TargetActivity]]:
        """``history_targets`` with casefolded names."""
        raise NotImplementedError

    def prune_history(
        self, now: float, days: float | None, lines_per_conversation: int | None
    ) -> Deferred[int]:
        """Delete lines older than ``days`` and beyond the newest ``lines_per_conversation``."""
        raise NotImplementedError

    def owner_data(self, owner: str) -> Deferred[tuple[dict[str, str], dict[str, str]]]:
        """The kept metadata (key -> value) and read markers (target -> timestamp) of an owner
        (``account:<name>`` or ``channel:<name>``, casefolded); sees every change made before."""
        raise NotImplementedError

    def save_metadata(self, owner: str, key: str, value: str | None) -> None:
        """Keep (or, with None, delete) one metadata key of an owner (written behind)."""
        self._changed("metadata", (owner, key), value)

    def save_read_marker(self, owner: str, target: str, stamp: str | None) -> None:
        """Keep (or, with None, delete) an owner's read marker for a target (written behind)."""
        self._changed("marker", (owner, target), stamp)

    def drop_owner_data(self, owner: str) -> None:
        """Delete everything kept for an owner (its account or registration is gone)."""
        self._changed("owner", owner, None)

    def flush(self) -> Deferred[None]:
        """Fires when every change made before the call is written."""
        return succeed(None)

    def close(self, timeout: float | None = None) -> Deferred[None]:
        """Flush, then release the database; after ``timeout`` seconds without a flush (the
        database is down) close anyway, logging how many changes were not written."""
        return self.flush()

    # -- accounts ----------------------------------------------------------------------------
    def account(self, name: str) -> Account | None:
        """The account called ``name`` (any case), or None."""
        return self._accounts.get(casefold(name))

    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def scram_credentials(self, name: str) -> ScramCredentials | None:
        """The SCRAM-SHA-256 credentials SASL needs for ``name``, or None for no such account."""
        found = self._accounts.get(casefold(name))
        return None if found is None else found.scram

    def create_account(
        self, name: str, password: str, now: float, email: str | None = None
    ) -> Deferred[Account]:
        """Register ``name`` (which must be a valid nick) and make it own that nick.

        Fails with ``AccountExists`` when the name, or the nick, is taken, and with ``StoreError``
        for a name or password this server refuses; the password is hashed in a thread.
        """
        return maybeDeferred(self._create_account, name, password, now, email)

    def _create_account(
        self, name: str, password: str, now: float, email: str | None
    ) -> Deferred[Account]:
        key = casefold(name)
        if not valid_nick(name):
            raise StoreError(f"{name!r} is not a valid account name (it must be a valid nick)")
        problem = passwords.password_problem(password)
        if problem:
            raise StoreError(problem)
        owner = self._nicks.get(key)
        if key in self._accounts or key in self._creating or (owner and owner.account != key):
            raise AccountExists(f"the account name {name} is taken")
        self._creating.add(key)

        def created(verifiers: tuple[str, ScramCredentials]) -> Account:
            password_hash, scram = verifiers
            account = Account(name, password_hash, scram, now, email)
            self._accounts[key] = account
            self._changed("account", key, account)
            self._nicks[key] = OwnedNick(name, key, now)
            self._changed("nick", key, self._nicks[key])
            return account

        def done(result: Any) -> Any:
            self._creating.discard(key)
            return result

        return passwords.hash_in_thread(password).addCallback(created).addBoth(done)

    def verify_password(self, name: str, password: str) -> Deferred[Account | None]:
        """The account when ``password`` is its password, else None (checked in a thread)."""
        account = self._accounts.get(casefold(name))
        if account is None:
            return succeed(None)
        hashed = account.password_hash
        return passwords.check_in_thread(hashed, password).addCallback(
            lambda ok: self._accounts.get(account.key) if ok else None
        )

    def set_password(self, name: str, password: str) -> Deferred[Account]:
        """Give an account a new password (hashed in a thread); fails with ``NoSuchAccount``."""
        return maybeDeferred(self._set_password, name, password)

    def _set_password(self, name: str, password: str) -> Deferred[Account]:
        key = casefold(name)
        if key not in self._accounts:
            raise NoSuchAccount(f"no account {name}")
        problem = passwords.password_problem(password)
        if problem:
            raise StoreError(problem)

        def hashed(verifiers: tuple[str, ScramCredentials]) -> Account:
            current = self._accounts.get(key)
            if current is None:
                raise NoSuchAccount(f"no account {name}")
            account = dataclasses.replace(current, password_hash=verifiers[0], scram=verifiers[1])
            self._accounts[key] = account
            self._changed("account", key, account)
            return account

        return passwords.hash_in_thread(password).addCallback(hashed)

    def drop_account(self, name: str) -> list[str]:
        """Delete an account, free its nicks, take it off access lists, drop the channels it
        founded; returns those channels' names."""
        key = casefold(name)
        if self._accounts.pop(key, None) is None:
            raise NoSuchAccount(f"no account {name}")
        self._changed("account", key, None)
        self.drop_owner_data("account:" + key)
        for nick_key in [n for n, owned in self._nicks.items() if owned.account == key]:
            del self._nicks[nick_key]
            self._changed("nick", nick_key, None)
        dropped = []
        for channel in list(self._channels.values()):
            if channel.founder == key:
                dropped.append(channel.name)
                self.drop_channel(channel.name)
            elif key in channel.access:
                self.set_access(channel.name, key, None)
        return dropped

    # -- nick ownership ------------------------------------------------------------------------
    def nick_owner(self, nick: str) -> str | None:
        """The casefolded account that owns ``nick``, or None."""
        owned = self._nicks.get(casefold(nick))
        return None if owned is None else owned.account

    def nicks_of(self, account: str) -> list[str]:
        key = casefold(account)
        return [owned.nick for owned in self._nicks.values() if owned.account == key]

    def claim_nick(self, account: str, nick: str, now: float) -> None:
        """Make ``account`` own ``nick`` too (``NickOwned``, ``ListFull`` when it may not)."""
        key, nick_key = casefold(account), casefold(nick)
        if key not in self._accounts:
            raise NoSuchAccount(f"no account {account}")
        if not valid_nick(nick):
            raise StoreError(f"{nick!r} is not a valid nick")
        owned = self._nicks.get(nick_key)
        if owned is not None:
            if owned.account == key:
                return
            raise NickOwned(f"{nick} belongs to another account")
        if nick_key in self._accounts or nick_key in self._creating:
            raise NickOwned(f"{nick} is an account name")
        if len(self.nicks_of(key)) >= MAX_NICKS_PER_ACCOUNT:
            raise ListFull(f"an account may own at most {MAX_NICKS_PER_ACCOUNT} nicks")
        self._nicks[nick_key] = OwnedNick(nick, key, now)
        self._changed("nick", nick_key, self._nicks[nick_key])

    def release_nick(self, account: str, nick: str) -> None:
        """Give up an owned nick (an account keeps its own name)."""
        key, nick_key = casefold(account), casefold(nick)
        owned = self._nicks.get(nick_key)
        if owned is None or owned.account != key:
            raise NickOwned(f"{account} does not own {nick}")
        if nick_key == key:
            raise StoreError("an account keeps its own name; drop the account instead")
        del self._nicks[nick_key]
        self._changed("nick", nick_key, None)

    # -- registered channels ---------------------------------------------------------------------
    def registered_channel(self, name: str) -> RegisteredChannel | None:
        return self._channels.get(casefold(name))

    def registered_channels(self) -> list[RegisteredChannel]:
        return list(self._channels.values())

    def register_channel(self, name: str, founder: str, now: float, **state: Any) -> RegisteredChannel:
        """Register a channel to ``founder`` (an account), with its current state (see ``update_channel``)."""
        key = casefold(name)
        if not valid_channel_name(name):
            raise StoreError(f"{name!r} is not a valid channel name")
        if key in self._channels:
            raise ChannelAlreadyRegistered(f"{name} is registered already")
        if casefold(founder) not in self._accounts:
            raise NoSuchAccount(f"no account {founder}")
        self._channels[key] = RegisteredChannel(name, casefold(founder), now)
        try:
            return self.update_channel(name, **state)
        except Exception:
            del self._channels[key]
            raise

    def update_channel(self, name: str, **changes: Any) -> RegisteredChannel:
        """Keep a registered channel's new state: any of ``CHANNEL_STATE_FIELDS``."""
        key = casefold(name)
        current = self._channels.get(key)
        if current is None:
            raise ChannelNotRegistered(f"{name} is not registered")
        unknown = set(changes) - CHANNEL_STATE_FIELDS
        if unknown:
            raise TypeError(f"not channel state: {sorted(unknown)}")
        if "bans" in changes:
            unique: dict[str, Ban] = {}
            for ban in changes["bans"]:
                unique.setdefault(ban.mask, ban)  # a mask once, the first kept
            changes["bans"] = tuple(unique.values())
            if len(changes["bans"]) > MAX_BANS:
                raise ListFull(f"a registered channel keeps at most {MAX_BANS} bans")
        if "founder" in changes:
            changes["founder"] = casefold(changes["founder"])
            if changes["founder"] not in self._accounts:
                raise NoSuchAccount(f"no account {changes['founder']}")
        if len(changes.get("description", "").encode()) > MAX_DESCRIPTION_BYTES:
            raise StoreError(f"a description holds at most {MAX_DESCRIPTION_BYTES} bytes")
        for flag in ("keep_topic", "restricted"):
            if flag in changes:
                changes[flag] = bool(changes[flag])
        channel = dataclasses.replace(current, **changes)
        _check_mlock(channel.mlock_on, channel.mlock_off)
        self._channels[key] = channel
        self._changed("channel", key, channel)
        return channel

    def set_access(self, name: str, account: str, level: str | None) -> RegisteredChannel:
        """Put ``account`` on a channel's access list as op ("o") or voice ("v"), or take it off (None)."""
        key, account_key = casefold(name), casefold(account)
        current = self._channels.get(key)
        if current is None:
            raise ChannelNotRegistered(f"{name} is not registered")
        access = dict(current.access)
        if level is None:
            access.pop(account_key, None)
        else:
            if level not in ACCESS_LEVELS:
                raise StoreError(f"access level must be one of {ACCESS_LEVELS}")
            if account_key not in self._accounts:
                raise NoSuchAccount(f"no account {account}")
            if account_key not in access and len(access) >= MAX_ACCESS_ENTRIES:
                raise ListFull(f"an access list holds at most {MAX_ACCESS_ENTRIES} entries")
            access[account_key] = level
        channel = dataclasses.replace(current, access=access)
        self._channels[key] = channel
        self._changed("channel", key, channel)
        return channel

    def drop_channel(self, name: str) -> None:
        key = casefold(name)
        if self._channels.pop(key, None) is None:
            raise ChannelNotRegistered(f"{name} is not registered")
        self._changed("channel", key, None)
        self.drop_owner_data("channel:" + key)
