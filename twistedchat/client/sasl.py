"""The client's side of an IRCv3 SASL login (PLAIN, SCRAM-SHA-256 with ``scramp``), without I/O.

:class:`SaslLogin` turns the server's ``AUTHENTICATE`` parameters into the ones to send back; the
protocol (:class:`twistedchat.client.protocol.ChatClient`) carries them and ends negotiation on
903 (logged in) or 902/904/905/906 (refused).
"""

from __future__ import annotations

import base64
import binascii

from scramp import ScramClient, ScramException

from twistedchat.server.sasl import CHUNK, encode_payload

#: Mechanisms we can use, best first.
MECHANISMS = ("SCRAM-SHA-256", "PLAIN")
#: Largest payload we accept from the server (a SCRAM message is a few hundred bytes).
MAX_SERVER_PAYLOAD = 4096


class SaslError(Exception):
    """The exchange cannot go on (the server's answer was malformed or failed verification)."""


def choose_mechanism(offered: str | None) -> str | None:
    """The best mechanism among the ``sasl`` capability's value (None: the server lists none)."""
    if offered is None or offered == "":
        return "PLAIN"  # a server that lists none takes PLAIN (sasl-3.1 servers)
    names = {name.strip().upper() for name in offered.split(",")}
    return next((mechanism for mechanism in MECHANISMS if mechanism in names), None)


class SaslLogin:
    """One login with ``account`` and ``password`` using ``mechanism``."""

    def __init__(self, account: str, password: str, mechanism: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism}")
        self.account = account
        self.password = password
        self.mechanism = mechanism
        self._buffer = ""
        self._scram: ScramClient | None = None
        self._step = 0

    def start(self) -> str:
        """The first line to send."""
        return f"AUTHENTICATE {self.mechanism}"

    def receive(self, param: str) -> list[str]:
        """The server sent ``AUTHENTICATE <param>``: the lines to answer with (may be none)."""
        if param != "+":
            if len(self._buffer) + len(param) > MAX_SERVER_PAYLOAD * 4 // 3 + 4:
                raise SaslError("the server's SASL message is too long")
            self._buffer += param
            if len(param) == CHUNK:
                return []  # more pieces follow
        text, self._buffer = self._buffer, ""
        try:
            payload = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise SaslError("the server's SASL message is not base64") from error
        answer = self._answer(payload)
        return [f"AUTHENTICATE {piece}" for piece in encode_payload(answer)]

    def _answer(self, payload: bytes) -> bytes:
        self._step += 1
        if self.mechanism == "PLAIN":
            if self._step > 1:
                raise SaslError("unexpected SASL challenge")
            return b"\0" + self.account.encode() + b"\0" + self.password.encode()
        try:
            if self._step == 1:
                self._scram = ScramClient(["SCRAM-SHA-256"], self.account, self.password)
                return self._scram.get_client_first().encode()
            assert self._scram is not None
            if self._step == 2:
                self._scram.set_server_first(payload.decode("utf-8"))
                return self._scram.get_client_final().encode()
            if self._step == 3:
                self._scram.set_server_final(payload.decode("utf-8"))
                return b""
        except (ScramException, UnicodeDecodeError) as error:
            raise SaslError(f"the server's SCRAM answer failed: {error}") from error
        raise SaslError("unexpected SASL challenge")
