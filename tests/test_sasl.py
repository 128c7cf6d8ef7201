"""SASL exchanges (PLAIN, SCRAM-SHA-256) and the login limiter, without sockets."""

from __future__ import annotations

import base64

import pytest
from scramp import ScramClient
from twisted.internet import task

from twistedchat.server.logins import LoginLimiter
from twistedchat.server.sasl import (
    CHUNK,
    CheckPassword,
    Failed,
    SaslExchange,
    Send,
    Succeeded,
    encode_payload,
)
from twistedchat.storage.passwords import make_verifiers
from twistedchat.wire import numerics as N

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def alice_scram():
    return make_verifiers(PASSWORD)[1]


def exchange_for(alice_scram, **kw) -> SaslExchange:
    return SaslExchange(lambda name: alice_scram if name.lower() == "alice" else None, **kw)


def send_payload(exchange: SaslExchange, payload: bytes) -> list:
    steps = []
    for piece in encode_payload(payload):
        steps = exchange.authenticate(piece)
    return steps


def received(steps) -> bytes:
    """Decode the payload the server sent in ``Send`` steps."""
    text = "".join(step.param for step in steps if isinstance(step, Send) and step.param != "+")
    return base64.b64decode(text)


def test_payload_pieces():
    assert encode_payload(b"") == ["+"]
    assert encode_payload(b"abc") == ["YWJj"]
    exact = encode_payload(b"x" * 300)  # 400 base64 characters exactly
    assert [len(p) for p in exact] == [CHUNK, 1] and exact[-1] == "+"
    assert [len(p) for p in encode_payload(b"x" * 301)] == [CHUNK, 4]


def test_plain_success_and_failure(alice_scram):
    sasl = exchange_for(alice_scram)
    assert sasl.authenticate("PLAIN") == [Send("+")]
    steps = send_payload(sasl, b"\0alice\0" + PASSWORD.encode())
    assert steps == [CheckPassword("alice", PASSWORD)] and sasl.in_progress
    assert sasl.password_checked("Alice") == [Succeeded("Alice")]
    assert sasl.finished and sasl.account == "Alice"
    again = exchange_for(alice_scram)
    again.authenticate("plain")
    send_payload(again, b"alice\0alice\0wrong")
    assert again.password_checked(None) == [Failed(N.ERR_SASLFAIL, "SASL authentication failed")]
    assert again.account is None


def test_plain_payload_in_several_pieces(alice_scram):
    sasl = exchange_for(alice_scram)
    sasl.authenticate("PLAIN")
    long_password = "p" * 350
    pieces = encode_payload(b"\0alice\0" + long_password.encode())
    assert len(pieces) == 2
    assert sasl.authenticate(pieces[0]) == []  # a full piece: more follows
    assert sasl.authenticate(pieces[1]) == [CheckPassword("alice", long_password)]


def test_refusals(alice_scram):
    sasl = exchange_for(alice_scram)
    [failed] = sasl.authenticate("EXTERNAL")
    assert failed.numeric == N.ERR_SASLFAIL and failed.list_mechanisms
    sasl.authenticate("PLAIN")
    assert sasl.authenticate("*") == [Failed(N.ERR_SASLABORTED, "SASL authentication aborted")]
    sasl.authenticate("PLAIN")
    assert sasl.authenticate("A" * (CHUNK + 1))[0].numeric == N.ERR_SASLTOOLONG
    sasl.authenticate("PLAIN")
    pieces = 0
    while not (steps := sasl.authenticate("A" * CHUNK)):
        pieces += 1
    assert pieces == 6 and steps[0].numeric == N.ERR_SASLTOOLONG  # the total is capped too
    sasl.authenticate("PLAIN")
    assert "base64" in sasl.authenticate("!!!!")[0].reason
    sasl.authenticate("PLAIN")
    assert "malformed" in send_payload(sasl, b"no separators")[0].reason
    sasl.authenticate("PLAIN")
    assert "authzid" in send_payload(sasl, b"bob\0alice\0" + PASSWORD.encode())[0].reason


def scram_login(sasl: SaslExchange, user: str, password: str):
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    assert sasl.authenticate("SCRAM-SHA-256") == [Send("+")]
    steps = send_payload(sasl, client.get_client_first().encode())
    if any(isinstance(step, Failed) for step in steps):
        return steps
    client.set_server_first(received(steps).decode())
    steps = send_payload(sasl, client.get_client_final().encode())
    if any(isinstance(step, Failed) for step in steps):
        return steps
    client.set_server_final(received(steps).decode())  # raises unless the server proved itself
    return sasl.authenticate("+")


def test_scram_success(alice_scram):
    sasl = exchange_for(alice_scram)
    assert scram_login(sasl, "alice", PASSWORD) == [Succeeded("alice")]


def test_scram_wrong_password_and_unknown_account_fail_alike(alice_scram):
    wrong = scram_login(exchange_for(alice_scram), "alice", "not the password")
    unknown = scram_login(exchange_for(alice_scram), "mallory", PASSWORD)
    assert wrong == unknown == [Failed(N.ERR_SASLFAIL, "SASL authentication failed")]


def test_scram_garbage_is_a_failure_not_a_crash(alice_scram):
    sasl = exchange_for(alice_scram)
    sasl.authenticate("SCRAM-SHA-256")
    assert send_payload(sasl, b"\xff\xfe not scram")[0].numeric == N.ERR_SASLFAIL
    sasl.authenticate("SCRAM-SHA-256")
    assert send_payload(sasl, b"n,,n=alice")[0].numeric == N.ERR_SASLFAIL


def test_failed_logins_are_braked_per_account_and_address(alice_scram):
    clock = task.Clock()
    limiter = LoginLimiter(account_burst=3, account_interval=60, address_burst=5, address_interval=30)

    def attempt(user: str, address: str, password: str):
        sasl = exchange_for(alice_scram, limiter=limiter, address=address, now=clock.seconds)
        return scram_login(sasl, user, password)

    for _ in range(3):
        assert attempt("alice", "10.0.0.1", "wrong")[0].reason == "SASL authentication failed"
    braked = attempt("alice", "10.0.0.2", PASSWORD)  # even the right password, from elsewhere
    assert braked[0].numeric == N.ERR_SASLFAIL and "try again in 60 s" in braked[0].reason
    clock.advance(60)
    assert attempt("alice", "10.0.0.2", PASSWORD) == [Succeeded("alice")]
    # The address brake: five failures on various accounts from one address.
    for n in range(5):
        attempt(f"user{n}", "10.0.0.9", "wrong")
    assert "try again" in attempt("alice", "10.0.0.9", PASSWORD)[0].reason
    assert attempt("alice", "10.0.0.3", PASSWORD) == [Succeeded("alice")]
    clock.advance(30)
    assert attempt("alice", "10.0.0.9", PASSWORD) == [Succeeded("alice")]


def test_limiter_memory_is_bounded():
    limiter = LoginLimiter(max_tracked=100)
    for n in range(1000):
        limiter.failed(f"user{n}", f"10.0.{n // 250}.{n % 250}", float(n))
    assert len(limiter._buckets) <= 100
    # The newest failures are still counted.
    assert limiter.wait("user999", None, 999.0) == 0.0  # one failure of five allowed
    for _ in range(4):
        limiter.failed("user999", None, 999.0)
    assert limiter.wait("user999", None, 999.0) > 0
