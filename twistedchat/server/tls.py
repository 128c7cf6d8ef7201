"""TLS settings for the daemon's ``ssl:`` listeners: which engine serves a description, and
certificates a reload can replace.

**The standard library's TLS** (the default engine, :mod:`twistedchat.server.tls_engine`):
:func:`stdlib_settings` turns an ``ssl:`` description
(``ssl:PORT[:interface=..][:backlog=..]:privateKey=KEY[:certKey=CERT]``) into a ``tcp:``
description and an ``ssl.SSLContext``, which a :class:`~twistedchat.server.tls_engine.TLSFactory`
serves. A description with an option this engine does not implement (``sslmethod``,
``dhParameters``, ``extraCertChain``) is left to Twisted's TLS, as is every listener under
``--tls-engine twisted``. One extra option, ``clientCA=FILE``, asks clients for a certificate signed
by that CA (optional for the client); its SHA-256 fingerprint is then available through
:func:`peer_certificate_fingerprint` on either engine.

**Reloading certificates** (either engine): a listener keeps its socket and its connections, and
every new connection gets the certificate read at the last reload (a renewed Let's Encrypt
certificate needs no restart). For Twisted's TLS: its ``ssl:`` endpoint reads the key and
certificate when its description is parsed and hands the TLS settings to ``reactor.listenSSL``.
The daemon parses with :class:`ListenRecorder` as the reactor: it passes everything on to the real
reactor, but gives ``listenSSL`` a :class:`ReloadableTLS` wrapping those settings (an
``IOpenSSLServerConnectionCreator``, the documented way to supply TLS to a listener), whose
settings :meth:`ReloadableTLS.replace` swaps. A :class:`TLSFactory` has the same ``replace``.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

from OpenSSL import SSL
from twisted.internet import endpoints, interfaces
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

# The engine lives in tls_engine; its names stay importable from here.
from twistedchat.server.tls_engine import READ_SIZE as READ_SIZE
from twistedchat.server.tls_engine import TLSConnection as TLSConnection
from twistedchat.server.tls_engine import TLSFactory as TLSFactory
from twistedchat.server.tls_engine import is_tls as is_tls


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """The TLS settings of one listener; new connections use whatever was set last."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def serverConnectionForTLS(self, protocol: Any) -> SSL.Connection:
        settings = self.settings
        if IOpenSSLServerConnectionCreator.providedBy(settings):
            connection: SSL.Connection = settings.serverConnectionForTLS(protocol)
        else:
            connection = SSL.Connection(settings.getContext(), None)  # an older-style factory
        # Ask for a client certificate without requiring one or a CA: an operator account may
        # name its SHA-256 fingerprint (CertFP), and the handshake proves the key is the client's.
        connection.set_verify(SSL.VERIFY_PEER, _any_certificate)
        return connection

    def replace(self, settings: Any) -> None:
        """Use ``settings`` (freshly read by :func:`read_tls_settings`) for new connections."""
        self.settings = settings


def _any_certificate(connection: SSL.Connection, certificate: Any, error: int, depth: int,
                     ok: int) -> bool:
    """Accept whatever certificate a client offers: only its fingerprint is used (OPER)."""
    return True


class ListenRecorder:
    """Stands in for the reactor an endpoint listens with; keeps the TLS settings it passes.

    With ``reactor`` None nothing listens: the endpoint is only made to show its settings.
    """

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor
        self.tls: list[ReloadableTLS] = []

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50,
                  interface: str = "") -> Any:
        reloadable = ReloadableTLS(contextFactory)
        self.tls.append(reloadable)
        if self._reactor is None:
            return None
        return self._reactor.listenSSL(port, factory, reloadable, backlog, interface)

    def __getattr__(self, name: str) -> Any:
        if self._reactor is None:
            if name.startswith("listen"):  # listenTCP, listenUNIX, ...: only parsing, no socket
                return lambda *args, **kwargs: None
            raise AttributeError(name)
        return getattr(self._reactor, name)


def read_tls_settings(description: str, engine: str = "twisted") -> list[Any]:
    """The TLS settings a description gives now (its key and certificate files read again and
    checked against each other), [] for a description without TLS; raises what Twisted or
    OpenSSL raise for a bad description or bad files. Opens no socket.

    With ``engine`` "stdlib", an ``ssl:`` description the standard library's TLS serves gives
    its ``ssl.SSLContext`` (:func:`stdlib_settings`).
    """
    if engine == "stdlib":
        lean = stdlib_settings(description)
        if lean is not None:
            return [lean[1]]
    recorder = ListenRecorder()
    endpoint = endpoints.serverFromString(recorder, description)
    failures: list[Any] = []
    endpoint.listen(Factory.forProtocol(Protocol)).addErrback(failures.append)
    if failures:
        failures[0].raiseException()
    settings = [reloadable.settings for reloadable in recorder.tls]
    for each in settings:
        if hasattr(each, "getContext"):
            each.getContext()  # builds the OpenSSL context: a key that does not match fails here
    return settings


#: ``ssl:`` options this module implements; any other sends the listener to Twisted's TLS.
SUPPORTED_OPTIONS = {"interface", "backlog", "privateKey", "certKey", "clientCA"}


def split_description(description: str) -> tuple[list[str], dict[str, str]]:
    """An endpoint description's positional and keyword parts, as Twisted's parser splits them
    (``:`` separates, ``\\`` escapes the next character)."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if sep:
            kwargs[name] = value
        else:
            args.append(part)
    return args, kwargs


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def server_context(private_key: str, cert: str, client_ca: str | None = None) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later, no renegotiation, the key and certificate (chain)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.load_cert_chain(cert, private_key)
    if client_ca:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(client_ca)
    return context


def stdlib_settings(description: str) -> tuple[str, ssl.SSLContext] | None:
    """For an ``ssl:`` description the standard library's TLS can serve: the ``tcp:``
    description to listen on and the TLS context (key and certificate read now).

    None when the description is not ``ssl:`` or names an option only Twisted's TLS has.
    Raises ``ValueError``/``OSError`` for a bad one (a missing port, an unreadable key).
    """
    args, kwargs = split_description(description)
    if not args or args[0].strip().lower() != "ssl" or not set(kwargs) <= SUPPORTED_OPTIONS:
        return None
    if len(args) != 2:
        raise ValueError(f"expected ssl:PORT[:option=value...], got {description!r}")
    if "privateKey" not in kwargs:
        raise ValueError("ssl: needs privateKey=FILE (and certKey=FILE if the key file has no "
                         "certificate)")
    context = server_context(kwargs["privateKey"], kwargs.get("certKey", kwargs["privateKey"]),
                             kwargs.get("clientCA"))
    tcp = "tcp:" + _escape(args[1]) + "".join(
        f":{name}={_escape(kwargs[name])}" for name in ("interface", "backlog") if name in kwargs)
    return tcp, context


def stdlib_listener(reactor: Any, description: str
                    ) -> tuple[interfaces.IStreamServerEndpoint, ssl.SSLContext] | None:
    """:func:`stdlib_settings` with the ``tcp:`` endpoint made (None: not this engine's)."""
    settings = stdlib_settings(description)
    if settings is None:
        return None
    tcp, context = settings
    return endpoints.serverFromString(reactor, tcp), context


def stdlib_tls_factory(description: str, factory: Any, clock: Any = None
                       ) -> tuple[str, TLSFactory] | None:
    """Where and with what a chat factory (its ``config`` and ``direct_write``) listens on an
    ``ssl:`` description under the standard library's TLS: (``tcp:`` description, factory).

    None under ``--tls-engine twisted`` or for a description only Twisted's TLS can serve.
    """
    config = factory.config
    if config.tls_engine != "stdlib":
        return None
    settings = stdlib_settings(description)
    if settings is None:
        return None
    tcp, context = settings
    return tcp, TLSFactory(factory, context, factory.direct_write, clock,
                           config.tls_write_interval_ms / 1000)


def peer_certificate_fingerprint(transport: object) -> str | None:
    """The SHA-256 fingerprint (lower-case hex) of the client's certificate, on either engine;
    None if the client sent none or the transport is not TLS."""
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    try:
        cert = get()
    except Exception:  # a plain TCP transport that never started TLS
        return None
    if cert is None:
        return None
    if isinstance(cert, bytes):
        der = cert
    else:  # pyOpenSSL's X509, from Twisted's TLS
        from OpenSSL import crypto

        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
    return hashlib.sha256(der).hexdigest()
