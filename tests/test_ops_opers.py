"""Operator passwords: argon2id hashes, verified off the reactor thread, and ``twistedchat hashpw``."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading

import pytest_twisted
from helpers import checkout_env

from twistedchat.server import opers
from twistedchat.server.config import OperAccount
from twistedchat.server.opers import check_oper, hash_password, verify_password


def test_hash_is_argon2id_and_verifies():
    digest = hash_password("correct horse")
    assert digest.startswith("$argon2id$")
    assert verify_password(digest, "correct horse")
    assert not verify_password(digest, "wrong")
    assert not verify_password("not a hash", "correct horse")
    assert not verify_password(digest, "x" * (opers.MAX_PASSWORD_BYTES + 1))


@pytest_twisted.ensureDeferred
async def test_check_oper_verifies_in_a_thread_and_honours_host_masks(monkeypatch):
    account = OperAccount("alice", hash_password("s3cret"), ("*@127.0.0.1",))
    accounts = {"alice": account}
    threads_used: list[str] = []
    real_verify = opers.verify_password

    def spying_verify(password_hash: str, password: str) -> bool:
        threads_used.append(threading.current_thread().name)
        return real_verify(password_hash, password)

    monkeypatch.setattr(opers, "verify_password", spying_verify)
    pending = check_oper(accounts, "alice", "s3cret", "al@127.0.0.1")
    assert await pending is True
    assert await check_oper(accounts, "alice", "guess", "al@127.0.0.1") is False
    assert threads_used and threading.main_thread().name not in threads_used
    # no account, or a host the account does not allow: refused without hashing at all
    threads_used.clear()
    assert await check_oper(accounts, "bob", "s3cret", "al@127.0.0.1") is False
    assert await check_oper(accounts, "alice", "s3cret", "al@192.0.2.9") is False
    assert threads_used == []


def run_hashpw(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twistedchat", "hashpw", *args], input=stdin,
                          env=checkout_env(), capture_output=True, text=True, timeout=60)


def test_hashpw_from_a_pipe_prints_a_hash():
    result = run_hashpw(stdin="piped pw\n")
    assert result.returncode == 0, result.stderr
    assert verify_password(result.stdout.strip(), "piped pw")


def test_hashpw_refuses_a_password_argument_and_empty_input():
    given = run_hashpw("hunter2")
    assert given.returncode == 2 and "never given on the command line" in given.stderr
    empty = run_hashpw(stdin="\n")
    assert empty.returncode == 1 and "empty" in empty.stderr


def test_hashpw_on_a_terminal_asks_twice_without_echo():
    main, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "twistedchat", "hashpw"], stdin=secondary, stdout=secondary,
        stderr=secondary, env=checkout_env(), start_new_session=True)
    os.close(secondary)
    output = b""
    answered = 0
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 30)
            assert ready, f"hashpw stalled; said {output!r}"
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            prompts = output.count(b"password: ") + output.count(b"Again: ")
            while answered < prompts:
                os.write(main, b"tty secret\n")
                answered += 1
    finally:
        os.close(main)
        process.wait(30)
    assert process.returncode == 0, output
    assert answered == 2
    assert b"tty secret" not in output  # never echoed
    digest = output.decode().strip().splitlines()[-1]
    assert verify_password(digest, "tty secret")
