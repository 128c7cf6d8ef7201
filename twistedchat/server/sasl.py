"""SASL over AUTHENTICATE (IRCv3 sasl-3.1): PLAIN and SCRAM-SHA-256 exchanges as sans-IO objects.

A ``SaslExchange`` takes each AUTHENTICATE parameter a client sends and returns steps for the
command layer: ``Send`` (an AUTHENTICATE line to the client), ``CheckPassword`` (verify a PLAIN
password off the reactor, then call ``password_checked``), ``Succeeded`` or ``Failed`` (a numeric).
Payloads travel base64-encoded in 400-byte pieces; a piece shorter than 400 bytes, or ``+`` after a
full one, ends a payload; ``*`` aborts.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scramp import ScramMechanism

from twistedchat.server.logins import LoginLimiter
from twistedchat.storage.model import ScramCredentials
from twistedchat.storage.passwords import decoy_scram
from twistedchat.wire import numerics as N
from twistedchat.wire.names import casefold

MECHANISMS = ("PLAIN", "SCRAM-SHA-256")
CHUNK = 400
#: Largest decoded payload accepted (a PLAIN or SCRAM message is far smaller).
MAX_PAYLOAD = 2048


class ScramServer(Protocol):
    """The server side of one SCRAM exchange, as scramp's ``ScramServer`` provides it."""

    def set_client_first(self, client_first: str) -> None: ...
    def get_server_first(self) -> str: ...
    def set_client_final(self, client_final: str) -> None: ...
    def get_server_final(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``AUTHENTICATE <param>`` to the client."""

    param: str


@dataclass(frozen=True, slots=True)
class CheckPassword:
    """Check ``password`` for account ``account`` (in a thread), then call ``password_checked``."""

    account: str
    password: str


@dataclass(frozen=True, slots=True)
class Succeeded:
    """Logged in as ``account``: send 900 RPL_LOGGEDIN and 903 RPL_SASLSUCCESS."""

    account: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The exchange is over without a login: send ``numeric`` with ``reason`` (908 lists mechanisms first)."""

    numeric: str
    reason: str
    list_mechanisms: bool = False


Step = Send | CheckPassword | Succeeded | Failed


def encode_payload(payload: bytes) -> list[str]:
    """The AUTHENTICATE parameters that carry ``payload`` (``+`` for empty or a final full piece)."""
    text = base64.b64encode(payload).decode("ascii")
    pieces = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    if not pieces or len(pieces[-1]) == CHUNK:
        pieces.append("+")
    return pieces


class SaslExchange:
    """One client's SASL session, from the mechanism name to success or failure.

    ``credentials`` looks up SCRAM credentials by account name (None: no such account);
    ``limiter`` (with ``address`` and ``now``) refuses attempts while an account or address is
    braked and counts failures.
    """

    def __init__(
        self,
        credentials: Callable[[str], ScramCredentials | None],
        limiter: LoginLimiter | None = None,
        address: str | None = None,
        now: Callable[[], float] = lambda: 0.0,
        mechanisms: tuple[str, ...] = MECHANISMS,
    ) -> None:
        self.credentials = credentials
        self.limiter = limiter
        self.address = address
        self.now = now
        self.mechanisms = mechanisms
        self.mechanism: str | None = None
        self._buffer = ""
        self._scram: ScramServer | None = None
        self._user: str | None = None
        #: the server-final SCRAM message is still to be sent (then the client's ``+`` completes)
        self._scram_final_pending = False
        self._state = "idle"  # idle, payload, checking, scram-final, done
        self.account: str | None = None

    @property
    def finished(self) -> bool:
        return self._state == "done"

    @property
    def in_progress(self) -> bool:
        return self._state not in ("idle", "done")

    def authenticate(self, param: str) -> list[Step]:
        """Handle one ``AUTHENTICATE <param>`` from the client."""
        if self._state == "done":
            self._state, self.mechanism = "idle", None
        if param == "*" and self._state != "idle":
            return self._fail(N.ERR_SASLABORTED, "SASL authentication aborted", count=False)
        if self._state == "idle":
            return self._start(param)
        if self._state == "checking":
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed", count=False)
        if len(param) > CHUNK:
            return self._fail(N.ERR_SASLTOOLONG, "SASL message too long", count=False)
        if param != "+":
            self._buffer += param
        if len(self._buffer) * 3 // 4 > MAX_PAYLOAD:
            return self._fail(N.ERR_SASLTOOLONG, "SASL message too long", count=False)
        if len(param) == CHUNK:
            return []  # more pieces follow
        text, self._buffer = self._buffer, ""
        try:
            payload = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed: bad base64", count=False)
        if self._state == "scram-final":
            return self._scram_done(payload)
        if self.mechanism == "PLAIN":
            return self._plain(payload)
        return self._scram_step(payload)

    def password_checked(self, account: str | None) -> list[Step]:
        """The result of a ``CheckPassword``: the account's name when the password was right."""
        if self._state != "checking":
            return []
        if account is None:
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed")
        return self._succeed(account)

    # -- the stages -------------------------------------------------------------------------------
    def _start(self, mechanism: str) -> list[Step]:
        name = mechanism.upper()
        if name not in self.mechanisms:
            self._state = "done"
            return [Failed(N.ERR_SASLFAIL, "SASL authentication failed", list_mechanisms=True)]
        self.mechanism, self._state, self._buffer = name, "payload", ""
        return [Send("+")]

    def _braked(self, account: str) -> list[Step] | None:
        if self.limiter is None:
            return None
        wait = self.limiter.wait(account, self.address, self.now())
        if wait > 0:
            self._state = "done"
            return [Failed(N.ERR_SASLFAIL, f"Too many failed logins; try again in {math.ceil(wait)} s")]
        return None

    def _plain(self, payload: bytes) -> list[Step]:
        try:
            authzid, authcid, password = payload.decode("utf-8").split("\0")
        except ValueError:
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed: malformed PLAIN", count=False)
        if authzid and casefold(authzid) != casefold(authcid):
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed: authzid must be empty")
        self._user = authcid
        braked = self._braked(authcid)
        if braked:
            return braked
        self._state = "checking"
        return [CheckPassword(authcid, password)]

    def _scram_step(self, payload: bytes) -> list[Step]:
        try:
            client_first = payload.decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed", count=False)

        def auth_info(username: str) -> tuple[bytes, bytes, bytes, int]:
            self._user = username
            found = self.credentials(username) or decoy_scram(casefold(username))
            return found.salt, found.stored_key, found.server_key, found.iterations

        scram: ScramServer = ScramMechanism("SCRAM-SHA-256").make_server(auth_info)
        self._scram = scram
        try:
            scram.set_client_first(client_first)
        except Exception:  # scramp raises ScramException, and others on some malformed input
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed", count=False)
        assert self._user is not None
        braked = self._braked(self._user)
        if braked:
            return braked
        self._state = "scram-final"
        self._scram_final_pending = True
        return [Send(piece) for piece in encode_payload(scram.get_server_first().encode())]

    def _scram_done(self, payload: bytes) -> list[Step]:
        assert self._scram is not None and self._user is not None
        if not self._scram_final_pending:
            # The client acknowledges our server-final message with an empty payload: logged in.
            if payload:
                return self._fail(N.ERR_SASLFAIL, "SASL authentication failed", count=False)
            return self._succeed(self._user)
        try:
            self._scram.set_client_final(payload.decode("utf-8"))
        except Exception:  # a wrong proof (ScramException), or malformed input
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed")
        if self.credentials(self._user) is None:
            return self._fail(N.ERR_SASLFAIL, "SASL authentication failed")
        self._scram_final_pending = False
        return [Send(piece) for piece in encode_payload(self._scram.get_server_final().encode())]

    def _succeed(self, account: str) -> list[Step]:
        self._state, self.account = "done", account
        if self.limiter is not None:
            self.limiter.succeeded(account, self.now())
        return [Succeeded(account)]

    def _fail(self, numeric: str, reason: str, count: bool = True) -> list[Step]:
        """End the exchange; ``count`` charges a wrong credential to the limiter."""
        if count and self.limiter is not None and self._user:
            self.limiter.failed(self._user, self.address, self.now())
        self._state, self._buffer, self._scram = "done", "", None
        return [Failed(numeric, reason)]
