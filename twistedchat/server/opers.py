"""Operator passwords: argon2id hashes, checked in a thread (never in the reactor), and ``hashpw``.

``check_oper`` is what the OPER command will call (wiring it into the command table belongs to the
core's command work): it finds the ``[[oper]]`` account, matches the user's ``user@host`` against
the account's masks, and verifies the password with argon2id in the reactor's thread pool.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads

from twistedchat.server.config import OperAccount

#: argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile (64 MiB, 3 passes).
_hasher = PasswordHasher()

#: Longest password accepted; argon2 would take any length, but nobody types more than this.
MAX_PASSWORD_BYTES = 1024


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (``$argon2id$v=19$m=...``), for ``[[oper]] password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches the hash. Slow on purpose (tens of ms): call it in a thread."""
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_oper(accounts: Mapping[str, OperAccount], name: str, password: str, user_mask: str,
               reactor: IReactorThreads | None = None) -> defer.Deferred[bool]:
    """Fires True if ``name`` is an operator account, ``user_mask`` (``user@host``) matches one
    of its host masks and the password verifies; the hashing runs in the reactor's thread pool.
    """
    account = accounts.get(name)
    if account is None or not account.allows(user_mask):
        return defer.succeed(False)
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = IReactorThreads(default_reactor)
    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), verify_password,
                                     account.password_hash, password)


def hashpw_main(argv: list[str]) -> int:
    """``twistedchat hashpw``: read a password (twice, without echo, on a terminal), print its hash.

    From a pipe it reads one line, for scripts: ``printf '%s\\n' "$PW" | twistedchat hashpw``.
    """
    if argv and argv[0] in ("-h", "--help"):
        print("usage: twistedchat hashpw\n\nReads an operator password (without echo) and prints "
              "its argon2id hash for the config file:\n\n  [[oper]]\n  name = \"alice\"\n"
              "  password = \"<the hash>\"\n  hosts = [\"*@192.0.2.*\"]")
        return 0
    if argv:
        print(f"twistedchat hashpw: unexpected argument {argv[0]!r} (the password is read, "
              "never given on the command line)", file=sys.stderr)
        return 2
    try:
        if sys.stdin.isatty():
            password = getpass.getpass("Operator password: ")
            if getpass.getpass("Again: ") != password:
                print("twistedchat hashpw: the two passwords differ", file=sys.stderr)
                return 1
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    except (EOFError, KeyboardInterrupt):
        print("twistedchat hashpw: no password read", file=sys.stderr)
        return 1
    if not password:
        print("twistedchat hashpw: the password is empty", file=sys.stderr)
        return 1
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        print(f"twistedchat hashpw: longer than {MAX_PASSWORD_BYTES} bytes", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0
