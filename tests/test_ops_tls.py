"""A reload reads TLS certificates again: new connections get the new one, open ones stay."""

from __future__ import annotations

import pytest
import pytest_twisted
from helpers import connect, write_self_signed
from twisted.internet import reactor

from twistedchat.server.config import ConfigError, ServerConfig
from twistedchat.server.service import ChatService


async def served_serial(port: int, nick: str):
    """Register over TLS; the certificate serial the server showed, and the open client."""
    client = await connect(f"ssl:host=127.0.0.1:port={port}")
    client.send(f"NICK {nick}", f"USER {nick} 0 * :T")
    await client.expect("001")
    return client.transport.getPeerCertificate().get_serial_number(), client


@pytest.mark.parametrize("engine", ["stdlib", "twisted"])
@pytest_twisted.ensureDeferred
async def test_reload_replaces_the_tls_certificate_without_disconnecting(tmp_path, engine):
    """On either TLS engine (twistedchat.server.tls)."""
    key, cert = write_self_signed(tmp_path)
    description = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    chat = ChatService(ServerConfig(ports=[description], tls_engine=engine), reactor=reactor)
    chat.privilegedStartService()
    chat.startService()
    try:
        port = chat.ports[0].getHost().port
        first_serial, early = await served_serial(port, "early")

        write_self_signed(tmp_path)  # a renewed certificate (and key) at the same paths
        changed, _kept = chat.reload()
        assert "tls certificates" in changed
        second_serial, late = await served_serial(port, "late")
        assert second_serial != first_serial
        await early.sync()  # the connection from before the reload still works
        assert not early.is_closed

        # A broken key file is refused; the certificate read last keeps being served.
        renewed = key.read_bytes()
        key.write_text("not a key\n")
        with pytest.raises(ConfigError, match="port: cannot use"):
            chat.reload()
        assert chat.reloads_refused == 1
        serial, other = await served_serial(port, "other")
        assert serial == second_serial

        # A key from another pair does not match the certificate: refused too.
        other_dir = tmp_path / "other"
        other_dir.mkdir()
        other_key, _ = write_self_signed(other_dir)
        key.write_bytes(other_key.read_bytes())
        with pytest.raises(ConfigError):
            chat.reload()
        key.write_bytes(renewed)
        assert "tls certificates" in chat.reload()[0]
        for client in (early, late, other):
            client.send("QUIT")
            await client.wait_closed()
    finally:
        await chat.stopService()


def test_configtest_checks_that_the_key_matches_the_certificate(tmp_path):
    import subprocess

    from helpers import checkout_env, twistd_command

    key, cert = write_self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    other_key, _ = write_self_signed(other)
    command = [*twistd_command(), "-n", "--pidfile=", "chat", "--configtest", "--port",
               f"ssl:6697:privateKey={other_key}:certKey={cert}"]
    result = subprocess.run(command, cwd=tmp_path, env=checkout_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "configuration refused: port: cannot use 'ssl:6697:" in result.stderr, result.stderr
    command[-1] = f"ssl:6697:privateKey={key}:certKey={cert}"
    good = subprocess.run(command, cwd=tmp_path, env=checkout_env(), capture_output=True,
                          text=True, timeout=60)
    assert good.returncode == 0, good.stderr
