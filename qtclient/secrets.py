"""Account passwords in the system keyring, only when the user asks and a keyring exists.

Passwords never go to ``QSettings``. Without the ``keyring`` package, or with its "fail"/"null"
backend (no Secret Service, no KWallet), :func:`keyring_available` is False and nothing is stored.
"""

from __future__ import annotations

from typing import Any

#: The keyring's service name; the entry's user name is ``host:port:account``.
SERVICE = "twistedchat"


def _backend() -> Any:
    """The keyring module when a real backend is there, else None."""
    try:
        import keyring  # optional: the client works without it, and then stores nothing
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration is no keyring
        return None
    if isinstance(backend, fail.Keyring) or "null" in type(backend).__module__:
        return None
    return keyring


#: tests put a stand-in here (an object with get_password, set_password, delete_password)
keyring_module: Any = None


def _keyring() -> Any:
    return keyring_module if keyring_module is not None else _backend()


def keyring_available() -> bool:
    return _keyring() is not None


def entry_name(host: str, port: int, account: str) -> str:
    return f"{host}:{port}:{account}"


def load_password(host: str, port: int, account: str) -> str:
    """The stored password of ``account`` at ``host:port`` ("" when none or no keyring)."""
    store = _keyring()
    if store is None or not account:
        return ""
    try:
        return store.get_password(SERVICE, entry_name(host, port, account)) or ""
    except Exception:  # a locked or broken keyring: ask again
        return ""


def remember_password(host: str, port: int, account: str, password: str) -> bool:
    """Keep the password in the keyring; False when there is none (then nothing is kept)."""
    store = _keyring()
    if store is None or not account or not password:
        return False
    try:
        store.set_password(SERVICE, entry_name(host, port, account), password)
    except Exception:
        return False
    return True


def forget_password(host: str, port: int, account: str) -> None:
    store = _keyring()
    if store is None or not account:
        return
    try:
        store.delete_password(SERVICE, entry_name(host, port, account))
    except Exception:  # not stored: nothing to forget
        pass
