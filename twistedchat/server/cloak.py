"""Host cloaks: what users see of each other's address, a keyed hash (HMAC-SHA256) of the real one.

A cloak is computed once, when a connection is made (never per message), from the config's
``cloak-secret``; the same address always gets the same cloak under the same secret, so channel
operators can still ban a cloak, while the address itself cannot be recovered from it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

#: Hosts shown as they are: a UNIX-socket client is on the server's own machine.
UNCLOAKED = frozenset({"localhost"})


def new_secret() -> str:
    """A random cloak secret, for a config that has none (cloaks then change at each start)."""
    return secrets.token_hex(32)


def cloak_host(secret: str, host: str) -> str:
    """The cloak of ``host`` (an IP address as the server shows it, or a name) under ``secret``.

    ``3f9a2c1b.7d4e8f01.5a6b9c2d.ip`` for an address: three groups of the keyed hash, so it stays
    a single token that cannot be taken for an address, a nick or a channel.
    """
    if host in UNCLOAKED:
        return host
    digest = hmac.new(secret.encode(), _canonical(host).encode(), hashlib.sha256).hexdigest()
    return f"{digest[0:8]}.{digest[8:16]}.{digest[16:24]}.ip"


def _canonical(host: str) -> str:
    """One spelling per address (``0::1`` as the server shows it and ``::1`` hash alike)."""
    try:
        return str(ipaddress.ip_address(host[1:] if host.startswith("0:") else host))
    except ValueError:
        return host.lower()
