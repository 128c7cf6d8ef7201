"""Password verifiers: argon2id hashes and SCRAM-SHA-256 credentials, computed in threads of their own."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from scramp import ScramMechanism
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from twistedchat.storage.model import ScramCredentials, StoreError

_R = TypeVar("_R")

#: Passwords longer than this are refused before any hashing (each byte costs hashing time).
MAX_PASSWORD_BYTES = 300
MIN_PASSWORD_CHARS = 8
#: PBKDF2 rounds for new SCRAM credentials (RFC 7677 asks for at least 4096).
SCRAM_ITERATIONS = 4096

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_scram = ScramMechanism("SCRAM-SHA-256")
#: Keys the fake SCRAM credentials of unknown accounts, so they look like real ones from outside.
_decoy_secret = secrets.token_bytes(32)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"a password may have at most {MAX_PASSWORD_BYTES} bytes"
    return None


def make_verifiers(password: str) -> tuple[str, ScramCredentials]:
    """The argon2id hash and SCRAM-SHA-256 credentials of a password (CPU-heavy: call in a thread)."""
    salt, stored_key, server_key, iterations = _scram.make_auth_info(
        password, iteration_count=SCRAM_ITERATIONS
    )
    return _hasher.hash(password), ScramCredentials(salt, stored_key, server_key, iterations)


def check_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches an argon2 hash (CPU-heavy: call in a thread)."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordsBusy(StoreError):
    """Too many password checks are waiting; the client should try again shortly."""


class PasswordWorker:
    """Threads for password hashing only, with a cap on the work waiting.

    Each argon2id hash takes ~64 MiB and a good fraction of a CPU second, so a flood of logins must
    neither take the reactor's own thread pool (name resolution uses it) nor queue without bound:
    past ``max_pending`` a request fails at once with ``PasswordsBusy``.
    """

    def __init__(self, threads: int = 2, max_pending: int = 64) -> None:
        self.threads = threads
        self.max_pending = max_pending
        self.pending = 0
        self._pool: ThreadPool | None = None

    def run(self, work: Callable[..., _R], *args: Any) -> Deferred[_R]:
        """``work(*args)`` in one of the worker's threads."""
        if self.pending >= self.max_pending:
            return fail(PasswordsBusy("the server is busy checking passwords; try again shortly"))
        from twisted.internet import reactor

        if self._pool is None:
            self._pool = ThreadPool(0, self.threads, name="twistedchat-passwords")
            self._pool.start()
            reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        self.pending += 1

        def done(result: Any) -> Any:
            self.pending -= 1
            return result

        return deferToThreadPool(IReactorFromThreads(reactor), self._pool, work, *args).addBoth(done)

    def stop(self) -> None:
        """Stop the threads (at reactor shutdown); a later ``run`` starts new ones."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()


worker = PasswordWorker()


def hash_in_thread(password: str) -> Deferred[tuple[str, ScramCredentials]]:
    """``make_verifiers`` in the password worker's threads."""
    return worker.run(make_verifiers, password)


def check_in_thread(password_hash: str, password: str) -> Deferred[bool]:
    """``check_password`` in the password worker's threads."""
    return worker.run(check_password, password_hash, password)


def decoy_scram(name: str) -> ScramCredentials:
    """Credentials no password matches, stable per name: an unknown account fails like a wrong password."""
    digest = hmac.new(_decoy_secret, name.encode("utf-8"), hashlib.sha256).digest()
    return ScramCredentials(digest[:16], digest, hashlib.sha256(digest).digest(), SCRAM_ITERATIONS)
