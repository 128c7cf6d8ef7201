"""The daemon's settings table: :class:`ServerConfig`, its parts, and every option with its check.

Every setting is declared once in :data:`SETTINGS`; its default is the :class:`ServerConfig` field
it fills. ``twistd chat`` builds its options from the table; :mod:`twistedchat.server.config`
reads the same names from a TOML file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twistedchat.server.classes import ConnectionClass
from twistedchat.wire.message import ascii_int
from twistedchat.wire.names import mask_matches

DEFAULT_PORT = "tcp:1234"
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """A setting, a config file or a file it names cannot be used; the message says why."""


#: What an operator may do, by name; an oper class grants some of them.
OPER_PERMISSIONS = ("kill", "ban", "override", "rehash", "die")


@dataclass(frozen=True)
class OperAccount:
    """An operator from the config file: name, argon2id password hash, the host masks allowed,
    the TLS client certificate fingerprints allowed (none: any) and its oper class."""

    name: str
    password_hash: str
    hosts: tuple[str, ...] = ("*@*",)
    #: SHA-256 fingerprints (lower-case hex, no colons); when set, OPER needs one of them
    fingerprints: tuple[str, ...] = ()
    #: the ``[[oper-class]]`` giving its permissions; empty: every permission
    oper_class: str = ""

    def allows(self, user_mask: str) -> bool:
        """Whether ``user@host`` matches one of this operator's host masks."""
        return any(mask_matches(mask, user_mask) for mask in self.hosts)

    def allows_certificate(self, fingerprint: str | None) -> bool:
        """Whether the client's certificate (its SHA-256 fingerprint) may be used for this oper."""
        if not self.fingerprints:
            return True
        return fingerprint is not None and normal_fingerprint(fingerprint) in self.fingerprints


@dataclass(frozen=True)
class WebircGateway:
    """A web gateway allowed to send WEBIRC: its name, password and the addresses it uses."""

    name: str
    password: str
    #: addresses and CIDR ranges (``192.0.2.10``, ``2001:db8::/64``) the gateway connects from
    hosts: tuple[str, ...]

    def trusts(self, address: str) -> bool:
        """Whether a connection from ``address`` (as the server shows it) is this gateway's."""
        from twistedchat.server.bans import parse_address

        parsed = parse_address(address)
        if parsed is None:
            return False
        return any(parsed in ipaddress.ip_network(host, strict=False) for host in self.hosts
                   if ipaddress.ip_network(host, strict=False).version == parsed.version)


def normal_fingerprint(text: str) -> str:
    """A fingerprint as compared: lower-case hex without colons."""
    return text.replace(":", "").strip().lower()


@dataclass
class ServerConfig:
    """Everything an admin can set. Zero means "no limit" for the counting limits."""

    name: str = "twistedchat.local"
    network: str = "twistedchat"
    #: the message of the day's lines (read from ``motd_file``)
    motd: list[str] | None = None
    password: str | None = None
    #: operator name -> password, from --oper/--oper-file (plain text; OPER compares these)
    opers: dict[str, str] = field(default_factory=dict)
    max_clients: int = 0
    max_per_ip: int = 10
    #: most connections from one CIDR group (0: no limit), grouped by cidr_v4 / cidr_v6 bits
    max_per_cidr: int = 0
    cidr_v4: int = 24
    cidr_v6: int = 64
    #: connect throttle: more than throttle_count connections from one address within
    #: throttle_window seconds are refused for throttle_duration seconds (0 count: off)
    throttle_count: int = 0
    throttle_window: float = 60.0
    throttle_duration: float = 300.0
    #: connection classes by CIDR (``[[class]]`` tables; see server/classes.py)
    classes: tuple[ConnectionClass, ...] = ()
    ping_interval: float = 120.0
    ping_timeout: float = 60.0
    registration_timeout: float = 60.0
    #: token bucket: lines allowed at once, then lines per second; 0 rate turns flood control off
    flood_burst: int = 20
    flood_rate: float = 5.0
    no_flood_control: bool = False
    #: queued (delayed) lines beyond which a flooding client is disconnected
    flood_queue: int = 100
    #: unsent output (bytes) beyond which a client that stopped reading is disconnected
    sendq: int = 1024 * 1024
    ports: list[str] = field(default_factory=lambda: [DEFAULT_PORT])
    motd_file: str | None = None
    oper_file: str | None = None
    #: operators from the config file, by name, with hashed passwords (see server/opers.py)
    oper_accounts: dict[str, OperAccount] = field(default_factory=dict)
    #: web gateways allowed to send WEBIRC (``[[webirc]]`` tables)
    webirc: tuple[WebircGateway, ...] = ()
    #: oper class name -> the permissions (of OPER_PERMISSIONS) it grants
    oper_classes: dict[str, frozenset[str]] = field(default_factory=dict)
    bans_file: str | None = None
    #: show users a keyed hash of each other's address instead of the address (server/cloak.py)
    cloak_hosts: bool = True
    #: the key of those hashes; None: a random one per start (cloaks then change at each restart)
    cloak_secret: str | None = None
    metrics: str | None = None
    log_format: str = "text"
    #: cluster: the Redis URL of the network this server is a node of (docs/cluster.md)
    cluster: str | None = None
    #: cluster: processes sharing the tcp: ports, each a node (needs ``cluster``)
    workers: int = 1
    #: cluster: seconds a node's batch of events may wait for more lines (twistedchat.cluster.pacing)
    cluster_gather: float = 0.0
    #: the TOML file these settings were read from, if any (reload reads it again)
    config_file: str | None = None
    #: write to an idle plain-TCP socket directly (twistedchat.server.fastpath); off: transport.write
    direct_write: bool = True
    #: TLS for ssl: listeners: "stdlib" (ssl.SSLObject, twistedchat.server.tls) or "twisted"
    tls_engine: str = "stdlib"
    #: stdlib TLS: milliseconds a client's output is gathered after a write (0: written at once)
    tls_write_interval_ms: float = 0.0
    #: where to serve the web client (page and WebSocket) and IRC over WebSocket alone
    web: list[str] = field(default_factory=list)
    websocket: list[str] = field(default_factory=list)
    #: pages (scheme://host[:port]) allowed to open a WebSocket; none: the page's own origin only
    websocket_origins: list[str] = field(default_factory=list)
    #: addresses or ranges whose Forwarded / X-Forwarded-For name a WebSocket client's address
    trusted_proxies: list[str] = field(default_factory=list)
    #: accounts, registered channels and history: ``sqlite:PATH``, ``memory:``, ``postgresql://...``
    db: str = "sqlite:twistedchat.sqlite3"
    #: history kept this many days (0: no age limit) and at most this many lines a conversation (0: no limit)
    history_days: float = 0.0
    history_lines_per_target: int = 0
    #: seconds someone has to identify for an account's nick before being renamed to a guest nick
    nick_enforce_timeout: float = 30.0

    @property
    def flood_control(self) -> bool:
        return self.flood_rate > 0 and not self.no_flood_control


# -- value checks: each takes a command-line string or a TOML value, returns the value or raises


def whole_number(minimum: int) -> Callable[[Any], int]:
    """A check for an integer of at least ``minimum``."""

    def check(value: Any) -> int:
        if isinstance(value, str):
            number = ascii_int(value.strip())
            if number is None:
                raise ConfigError(f"{value!r} is not a whole number")
            value = number
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{value!r} is not a whole number")
        if value < minimum:
            raise ConfigError(f"must be at least {minimum}, not {value}")
        return value

    return check


def real_number(minimum: float) -> Callable[[Any], float]:
    """A check for a number (seconds, a rate) of at least ``minimum``."""

    def check(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(f"{value!r} is not a number")
        if value < minimum:
            raise ConfigError(f"must be at least {minimum:g}, not {value:g}")
        return float(value)

    return check


def bounded_number(low: int, high: int) -> Callable[[Any], int]:
    """A check for a whole number from ``low`` to ``high``."""
    at_least = whole_number(low)

    def check(value: Any) -> int:
        number = at_least(value)
        if number > high:
            raise ConfigError(f"must be at most {high}, not {number}")
        return number

    return check


def text(value: Any) -> str:
    """A check for a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected text, got {value!r}")
    return value


def flag(value: Any) -> bool:
    """A check for true/false."""
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def port_description(value: Any) -> str:
    """A bare number means ``tcp:NUMBER``; anything else is a Twisted endpoint description."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    description = text(value)
    number = ascii_int(description)
    if number is not None:
        if not 0 <= number <= 65535:
            raise ConfigError(f"{description} is not a TCP port number (0-65535)")
        return f"tcp:{number}"
    return description


def web_origin(value: Any) -> str:
    """An origin a page may come from: ``https://chat.example.org`` (normalized)."""
    from twistedchat.server.websocket import normalize_origin

    try:
        return normalize_origin(text(value))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def network(value: Any) -> str:
    """An IP address or a CIDR range (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text(value).strip(), strict=False))
    except ValueError:
        raise ConfigError(f"{value!r} is not an IP address or range") from None


def db_url(value: Any) -> str:
    """A ``--db`` URL: ``sqlite:PATH``, ``memory:`` or ``postgresql://USER@HOST/DB``."""
    from twistedchat.storage.url import parse_store_url

    url = text(value)
    try:
        parse_store_url(url)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return url


def log_format(value: Any) -> str:
    """``text`` (twistd's usual lines) or ``json`` (one twisted.logger JSON event a line)."""
    if value not in LOG_FORMATS:
        raise ConfigError(f"expected one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return str(value)


TLS_ENGINES = ("stdlib", "twisted")


def tls_engine(value: Any) -> str:
    """``stdlib`` (Python's ssl module, twistedchat.server.tls) or ``twisted`` (pyOpenSSL)."""
    if value not in TLS_ENGINES:
        raise ConfigError(f"expected one of {', '.join(TLS_ENGINES)}, got {value!r}")
    return str(value)


def parse_oper(value: str) -> tuple[str, str]:
    """``NAME:PASSWORD`` -> (name, password)."""
    name, sep, password = value.partition(":")
    if not sep or not name or not password or " " in name:
        raise ConfigError(f"expected NAME:PASSWORD, got {value!r}")
    return name, password


@dataclass(frozen=True)
class Setting:
    """One admin setting: its option and config-file key, the field it fills, its check and help."""

    key: str
    help: str
    check: Callable[[Any], Any]
    #: the :class:`ServerConfig` field (default: the key with ``_`` for ``-``)
    attribute: str = ""
    #: whether a reload (SIGHUP, REHASH) may change it; the others need a restart
    reloadable: bool = True
    #: a command-line flag (no value); in the file it is ``key = true``
    is_flag: bool = False
    #: the option may be given several times; in the file it is a list
    repeated: bool = False
    #: the value is a path relative to the config file's directory when read from the file
    is_path: bool = False
    #: a flag that turns its field off (``no-direct-write`` sets ``direct_write`` to False)
    negates: bool = False

    @property
    def field_name(self) -> str:
        return self.attribute or self.key.replace("-", "_")

    def field_value(self, value: Any) -> Any:
        """The field's value for a checked option value (a negating flag inverts it)."""
        return not value if self.negates else value

    @property
    def default(self) -> Any:
        """The default, from :class:`ServerConfig` (the one place defaults are written)."""
        spec = _FIELDS[self.field_name]
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return spec.default


_FIELDS = {spec.name: spec for spec in dataclasses.fields(ServerConfig)}

SETTINGS: tuple[Setting, ...] = (
    Setting("port", "Where to listen: a port number or a Twisted endpoint description "
            "(repeatable).", port_description, attribute="ports", reloadable=False, repeated=True),
    Setting("name", "Server name shown to clients.", text, reloadable=False),
    Setting("network", "Network name (ISUPPORT NETWORK).", text, reloadable=False),
    Setting("motd", "File with the message of the day (read again on reload).", text,
            attribute="motd_file", is_path=True),
    Setting("password", "Server password that clients must send with PASS (better in the "
            "config file).", text),
    Setting("oper-file", "File of operator credentials, one NAME:PASSWORD a line.", text,
            is_path=True),
    Setting("max-clients", "Most connections at once (0: no limit).", whole_number(0)),
    Setting("max-per-ip", "Most connections from one address (0: no limit).", whole_number(0)),
    Setting("max-per-cidr", "Most connections from one CIDR group (cidr-v4/cidr-v6 bits; 0: no "
            "limit).", whole_number(0)),
    Setting("cidr-v4", "Prefix length grouping IPv4 addresses for max-per-cidr.",
            bounded_number(8, 32)),
    Setting("cidr-v6", "Prefix length grouping IPv6 addresses for max-per-cidr.",
            bounded_number(16, 128)),
    Setting("throttle-count", "Connections one address may open within throttle-window before "
            "it is refused for throttle-duration seconds (0: no throttle).", whole_number(0)),
    Setting("throttle-window", "Seconds over which throttle-count connections are counted.",
            real_number(1)),
    Setting("throttle-duration", "Seconds an address that passed the throttle is refused.",
            real_number(1)),
    Setting("ping-interval", "Seconds of silence before the server sends PING.", real_number(1)),
    Setting("ping-timeout", "Seconds to wait for the answer to PING.", real_number(1)),
    Setting("registration-timeout", "Seconds a new connection has to register.", real_number(1)),
    Setting("flood-burst", "Lines a client may send at once before being slowed.",
            whole_number(1)),
    Setting("flood-rate", "Lines per second a client may send after its burst.",
            real_number(0.1)),
    Setting("no-flood-control", "Turn the per-client flood limit off (benchmarks).", flag,
            is_flag=True),
    Setting("no-direct-write", "Write all output through Twisted's transport.write (no direct "
            "socket writes).", flag, attribute="direct_write", is_flag=True, negates=True,
            reloadable=False),
    Setting("flood-queue", "Delayed lines after which a flooder is disconnected.",
            whole_number(1)),
    Setting("sendq", "Bytes of unsent output before a client is dropped.", whole_number(1024)),
    Setting("bans-file", "File of server bans (kept by the ban commands).", text, is_path=True),
    Setting("no-cloak", "Show users each other's real address instead of a cloak.", flag,
            attribute="cloak_hosts", is_flag=True, negates=True),
    Setting("cloak-secret", "Key of the host cloaks (HMAC-SHA256); keep it secret and stable "
            "(better in the config file).", text),
    Setting("metrics", "Serve Prometheus metrics (/metrics) and /health on this endpoint "
            "description, e.g. tcp:9101:interface=127.0.0.1.", text, reloadable=False),
    Setting("log-format", "Log lines as 'text' or 'json' (one JSON event a line).", log_format,
            reloadable=False),
    Setting("tls-engine", "TLS for ssl: ports: stdlib (Python's ssl module) or twisted "
            "(Twisted's TLS over pyOpenSSL).", tls_engine, reloadable=False),
    Setting("tls-write-interval", "Milliseconds a busy TLS client's output is gathered after a "
            "write into one record (stdlib engine; 0: off).", real_number(0),
            attribute="tls_write_interval_ms", reloadable=False),
    Setting("web", "Serve the web client here: the page at /, its WebSocket at /ws "
            "(repeatable).", port_description, reloadable=False, repeated=True),
    Setting("websocket", "Serve IRC over WebSocket (IRCv3) here, at / and /ws (repeatable).",
            port_description, reloadable=False, repeated=True),
    Setting("websocket-origin", "Let pages from this origin (https://chat.example.org) open a "
            "WebSocket (repeatable; none: only the page's own).", web_origin,
            attribute="websocket_origins", reloadable=False, repeated=True),
    Setting("db", "Where accounts, registered channels and history are kept: sqlite:PATH, "
            "memory: (nothing kept) or postgresql://USER@HOST/DB.", db_url, reloadable=False),
    Setting("history-days", "Days of message history kept (0: no age limit).", real_number(0),
            reloadable=False),
    Setting("history-lines-per-target", "Most history lines kept per channel or conversation "
            "(0: no limit).", whole_number(0), reloadable=False),
    Setting("nick-enforce-timeout", "Seconds someone using an account's nick has to identify "
            "before being renamed to a guest nick.", real_number(1)),
    Setting("trusted-proxy", "Take WebSocket clients' addresses from Forwarded/X-Forwarded-For "
            "sent by this address or range (repeatable).", network, attribute="trusted_proxies",
            reloadable=False, repeated=True),
    Setting("cluster", "redis://host:port/db: be a node of the network kept in that Redis "
            "(docs/cluster.md).", lambda value: _cluster_check("cluster_url", value),
            reloadable=False),
    Setting("workers", "Processes sharing the tcp: ports, each a node of the network (needs "
            "cluster): a number, or auto for one per core.",
            lambda value: _cluster_check("worker_count", value), reloadable=False),
    Setting("cluster-gather", "Seconds (0 to 0.01) a node's batch of events may wait for more "
            "lines once one has just left: fewer Redis calls and wake-ups on a busy network, that "
            "much more latency across nodes (docs/cluster.md).",
            lambda value: _cluster_check("gather_window", value), reloadable=False),
)


def _cluster_check(name: str, value: Any) -> Any:
    """The cluster's option checks live with the cluster (imported only when used)."""
    from twistedchat.cluster import service

    return getattr(service, name)(value)
SETTINGS_BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}
