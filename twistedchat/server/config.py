"""The daemon's settings: one table of options (command line and config file), their defaults and checks.

Every setting is declared once in :data:`SETTINGS`; its default is the :class:`ServerConfig` field
it fills. ``twistd chat`` builds its options from the table, and :func:`load_config` reads the same
names from a TOML file: command-line values override the file, the file overrides the defaults.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from twistedchat.server.classes import CLASS_LIMITS, ConnectionClass
from twistedchat.wire.message import ascii_int
from twistedchat.wire.names import mask_matches, valid_nick

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

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
    Setting("trusted-proxy", "Take WebSocket clients' addresses from Forwarded/X-Forwarded-For "
            "sent by this address or range (repeatable).", network, attribute="trusted_proxies",
            reloadable=False, repeated=True),
)
SETTINGS_BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}


# -- building a ServerConfig from the file and the command line ---------------------------------


#: The most a MOTD or oper file may hold: every new user is sent the whole MOTD.
MAX_FILE_BYTES = 64 * 1024


def read_lines(what: str, path: str) -> list[str]:
    """A text file's lines, or a :class:`ConfigError` naming ``what`` and the path."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what}: {path} is over {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ConfigError(f"{what}: {path} is not UTF-8 ({error.reason} at byte "
                          f"{error.start})") from None


def read_config_file(path: str) -> dict[str, Any]:
    """The settings a TOML config file gives, checked, by field name (plus ``oper_accounts``)."""
    import os

    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8: {error}") from None
    base = os.path.dirname(os.path.abspath(path))
    values: dict[str, Any] = {}
    for key, value in document.items():
        if key == "oper":
            values["oper_accounts"] = _oper_accounts(path, value)
            continue
        if key == "class":
            values["classes"] = _connection_classes(path, value)
            continue
        if key == "webirc":
            values["webirc"] = _webirc_gateways(path, value)
            continue
        if key == "oper-class":
            values["oper_classes"] = _oper_classes(path, value)
            continue
        setting = SETTINGS_BY_KEY.get(key)
        if setting is None:
            known = ", ".join([*SETTINGS_BY_KEY, "[[oper]]", "[[oper-class]]", "[[webirc]]",
                               "[[class]]"])
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {known})")
        try:
            if setting.repeated:
                items = value if isinstance(value, list) else [value]
                if not items:
                    raise ConfigError("needs at least one value")
                checked: Any = [setting.check(item) for item in items]
            else:
                checked = setting.check(value)
        except ConfigError as error:
            raise ConfigError(f"{path}: {key}: {error}") from None
        if setting.is_path:
            checked = os.path.join(base, os.path.expanduser(checked))
        values[setting.field_name] = setting.field_value(checked)
    return values


def _oper_accounts(path: str, tables: Any) -> dict[str, OperAccount]:
    """``[[oper]]`` tables: ``name``, ``password`` (an argon2id hash) and ``hosts`` (masks)."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: write operators as [[oper]] tables")
    accounts: dict[str, OperAccount] = {}
    for number, table in enumerate(tables, 1):
        where = f"{path}: [[oper]] number {number}"
        unknown = set(table) - {"name", "password", "hosts", "fingerprints", "class"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                              "(known: name, password, hosts, fingerprints, class)")
        name = table.get("name")
        if not isinstance(name, str) or not name or " " in name:
            raise ConfigError(f"{where}: needs a name without spaces")
        secret = table.get("password")
        if not isinstance(secret, str) or not secret.startswith("$argon2id$"):
            raise ConfigError(f"{where} ({name}): password must be an argon2id hash "
                              "(make one with: twistedchat hashpw)")
        hosts = table.get("hosts", ["*@*"])
        if (not isinstance(hosts, list) or not hosts
                or not all(isinstance(h, str) and h and " " not in h for h in hosts)):
            raise ConfigError(f"{where} ({name}): hosts must be a list of user@host masks")
        fingerprints = table.get("fingerprints", [])
        if not isinstance(fingerprints, list) or not all(
                isinstance(f, str) and len(normal_fingerprint(f)) == 64
                and all(c in "0123456789abcdef" for c in normal_fingerprint(f))
                for f in fingerprints):
            raise ConfigError(f"{where} ({name}): fingerprints must be SHA-256 fingerprints "
                              "(64 hex digits, colons allowed)")
        oper_class = table.get("class", "")
        if not isinstance(oper_class, str):
            raise ConfigError(f"{where} ({name}): class must be the name of an [[oper-class]]")
        if name in accounts:
            raise ConfigError(f"{where}: operator {name!r} is defined twice")
        accounts[name] = OperAccount(name, secret, tuple(hosts),
                                     tuple(normal_fingerprint(f) for f in fingerprints),
                                     oper_class)
    return accounts


def _tables(path: str, tables: Any, label: str,
            known: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each ``[[label]]`` table with where it is (for messages), its keys checked."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: write these as [[{label}]] tables")
    for number, table in enumerate(tables, 1):
        where = f"{path}: [[{label}]] number {number}"
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(sorted(known))})")
        yield where, table


def _networks(where: str, hosts: Any) -> tuple[str, ...]:
    """A non-empty list of addresses or CIDR ranges, checked."""
    if not isinstance(hosts, list) or not hosts:
        raise ConfigError(f"{where}: hosts must list addresses or CIDR ranges")
    for host in hosts:
        try:
            ipaddress.ip_network(host, strict=False)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: {host!r} is not an address or CIDR range") from None
    return tuple(hosts)


def _connection_classes(path: str, tables: Any) -> tuple[ConnectionClass, ...]:
    """``[[class]]`` tables: ``name``, ``hosts`` (CIDR ranges), ``exempt`` and limits, each
    checked as the global setting of the same name is."""
    limit_keys = {name.replace("_", "-"): name for name in CLASS_LIMITS}
    classes = []
    names: set[str] = set()
    for where, table in _tables(path, tables, "class", {"name", "hosts", "exempt", *limit_keys}):
        name = table.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ConfigError(f"{where}: needs a name of its own")
        names.add(name)
        hosts = _networks(f"{where} ({name})", table.get("hosts"))
        limits: dict[str, Any] = {}
        for key, value in table.items():
            if key in limit_keys:
                try:
                    limits[limit_keys[key]] = SETTINGS_BY_KEY[key].check(value)
                except ConfigError as error:
                    raise ConfigError(f"{where} ({name}): {key}: {error}") from None
        exempt = table.get("exempt", False)
        if not isinstance(exempt, bool):
            raise ConfigError(f"{where} ({name}): exempt must be true or false")
        classes.append(ConnectionClass(name, hosts, exempt=exempt, **limits))
    return tuple(classes)


def _webirc_gateways(path: str, tables: Any) -> tuple[WebircGateway, ...]:
    """``[[webirc]]`` tables: ``name``, ``password`` and ``hosts`` (addresses or CIDR ranges)."""
    gateways = []
    for where, table in _tables(path, tables, "webirc", {"name", "password", "hosts"}):
        name, secret = table.get("name"), table.get("password")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: needs a name")
        if not isinstance(secret, str) or len(secret) < 12:
            raise ConfigError(f"{where} ({name}): password must be at least 12 characters")
        gateways.append(WebircGateway(name, secret, _networks(f"{where} ({name})",
                                                              table.get("hosts"))))
    return tuple(gateways)


def _oper_classes(path: str, tables: Any) -> dict[str, frozenset[str]]:
    """``[[oper-class]]`` tables: ``name`` and ``permissions`` (of OPER_PERMISSIONS)."""
    classes: dict[str, frozenset[str]] = {}
    for where, table in _tables(path, tables, "oper-class", {"name", "permissions"}):
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: needs a name")
        permissions = table.get("permissions", [])
        if not isinstance(permissions, list) or not all(
                p in OPER_PERMISSIONS for p in permissions):
            raise ConfigError(f"{where} ({name}): permissions must be a list of "
                              + ", ".join(OPER_PERMISSIONS))
        if name in classes:
            raise ConfigError(f"{where}: oper class {name!r} is defined twice")
        classes[name] = frozenset(permissions)
    return classes


def load_config(config_file: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """A checked :class:`ServerConfig`: defaults, then ``config_file``, then ``overrides``.

    ``overrides`` holds what the command line gave, by field name (``opers`` is merged with
    the file's). The MOTD and oper files the settings name are read here, so a reload that
    calls this again sees their new contents. Raises :class:`ConfigError` with the reason.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(read_config_file(config_file))
    opers: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        if key == "opers":
            opers.update(value)
        else:
            values[key] = value
    config = ServerConfig(**values, config_file=config_file)
    if config.motd_file is not None:
        config.motd = read_lines("motd", config.motd_file)
    if config.oper_file is not None:
        for line in read_lines("oper-file", config.oper_file):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    name, secret = parse_oper(line.strip())
                except ConfigError as error:
                    raise ConfigError(f"oper-file: {config.oper_file}: {error}") from None
                config.opers[name] = secret
    config.opers.update(opers)
    check_config(config)
    return config


def settings_of(config: ServerConfig) -> dict[str, Any]:
    """Every setting's value in ``config`` (and its plain-text opers), as :func:`load_config`
    takes them in ``overrides``: a config built in code reloads to itself plus fresh files."""
    values = {setting.field_name: getattr(config, setting.field_name) for setting in SETTINGS}
    values["opers"] = dict(config.opers)
    values["oper_accounts"] = dict(config.oper_accounts)
    values["oper_classes"] = dict(config.oper_classes)
    values["webirc"] = config.webirc
    values["classes"] = config.classes
    if config.motd_file is None and config.motd is not None:
        values["motd"] = list(config.motd)  # given as text, no file to read again
    return values


def exposed_secrets(config: ServerConfig) -> str | None:
    """A warning if the config file holds secrets (a password, operators) and every local user
    may read it; None otherwise."""
    import os
    import stat

    path = config.config_file
    if path is None or not (config.password or config.oper_accounts or config.cloak_secret
                            or config.webirc):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not mode & stat.S_IROTH:
        return None
    return (f"{path} holds secrets and every user can read it; "
            f"chmod 640 it (group: the daemon's user)")


def check_config(config: ServerConfig) -> None:
    """Checks across settings (names the IRC protocol can carry)."""
    if not config.name or " " in config.name:
        raise ConfigError("name: a server name cannot be empty or contain spaces")
    if not valid_nick(config.network.replace(".", "-")):
        raise ConfigError("network: use letters, digits, '-' and '.' only")
    if not config.ports:
        raise ConfigError("port: give at least one")
    for account in config.oper_accounts.values():
        if account.oper_class and account.oper_class not in config.oper_classes:
            raise ConfigError(f"[[oper]] {account.name}: no [[oper-class]] named "
                              f"{account.oper_class!r}")
    if config.bans_file is not None:
        from twistedchat.server.bans import BanError, FileBanStore

        try:
            FileBanStore(config.bans_file).load()
        except BanError as error:
            raise ConfigError(str(error)) from None


def reload_into(running: ServerConfig, fresh: ServerConfig) -> tuple[list[str], list[str]]:
    """Copy the reloadable settings of ``fresh`` into ``running`` (in place, so the core, the
    factory and every connection see them at once).

    Returns (the keys that changed, the keys that changed but need a restart to take effect).
    """
    changed: list[str] = []
    kept: list[str] = []
    for setting in SETTINGS:
        name = setting.field_name
        if getattr(running, name) == getattr(fresh, name):
            continue
        if setting.reloadable:
            setattr(running, name, getattr(fresh, name))
            changed.append(setting.key)
        else:
            kept.append(setting.key)
    for name, label in (("motd", "motd text"), ("opers", "opers"),
                        ("oper_accounts", "[[oper]]"), ("oper_classes", "[[oper-class]]"),
                        ("webirc", "[[webirc]]"), ("classes", "[[class]]")):
        if getattr(running, name) != getattr(fresh, name):
            setattr(running, name, getattr(fresh, name))
            changed.append(label)
    return changed, kept


def check_endpoints(config: ServerConfig) -> None:
    """Every listening description (``port``, ``metrics``) parses into a Twisted endpoint, and
    the TLS ones have a readable key that matches their certificate (no socket is opened)."""
    from twistedchat.server.tls import read_tls_settings

    named = [("port", description) for description in config.ports]
    named += [("web", description) for description in config.web]
    named += [("websocket", description) for description in config.websocket]
    if config.metrics is not None:
        named.append(("metrics", config.metrics))
    for key, description in named:
        try:
            read_tls_settings(description, config.tls_engine)
        except ssl.SSLError as error:  # the stdlib engine's key that does not match, and the like
            raise ConfigError(f"{key}: cannot use {description!r}: {error}") from None
        except (ValueError, KeyError, TypeError, OSError) as error:
            raise ConfigError(f"{key}: bad endpoint {description!r}: {error}") from None
        except Exception as error:  # e.g. an unreadable certificate, a key that does not match
            raise ConfigError(f"{key}: cannot use {description!r}: {error}") from None
