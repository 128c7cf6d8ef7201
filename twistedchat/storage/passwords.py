"""Password verifiers: argon2id hashes and SCRAM-SHA-256 credentials, always computed off the reactor."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from scramp import ScramMechanism
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from twistedchat.storage.model import ScramCredentials

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


def hash_in_thread(password: str) -> Deferred[tuple[str, ScramCredentials]]:
    """``make_verifiers`` in the reactor's thread pool."""
    return deferToThread(make_verifiers, password)


def check_in_thread(password_hash: str, password: str) -> Deferred[bool]:
    """``check_password`` in the reactor's thread pool."""
    return deferToThread(check_password, password_hash, password)


def decoy_scram(name: str) -> ScramCredentials:
    """Credentials no password matches, stable per name: an unknown account fails like a wrong password."""
    digest = hmac.new(_decoy_secret, name.encode("utf-8"), hashlib.sha256).digest()
    return ScramCredentials(digest[:16], digest, hashlib.sha256(digest).digest(), SCRAM_ITERATIONS)
