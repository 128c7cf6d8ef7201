"""The daemon's settings, as one plain object shared by the core, the connections and the plugin."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServerConfig:
    """Everything an admin can set. Zero means "no limit" for the counting limits."""

    name: str = "twistedchat.local"
    network: str = "twistedchat"
    motd: list[str] | None = None
    password: str | None = None
    #: operator name -> password
    opers: dict[str, str] = field(default_factory=dict)
    max_clients: int = 0
    max_per_ip: int = 10
    ping_interval: float = 120.0
    ping_timeout: float = 60.0
    registration_timeout: float = 60.0
    #: token bucket: lines allowed at once, then lines per second; 0 rate turns flood control off
    flood_burst: int = 20
    flood_rate: float = 5.0
    #: queued (delayed) lines beyond which a flooding client is disconnected
    flood_queue: int = 100
    #: unsent output (bytes) beyond which a client that stopped reading is disconnected
    sendq: int = 1024 * 1024
    #: write to an idle plain-TCP socket directly (twistedchat.server.fastpath); off: transport.write
    direct_write: bool = True
    #: TLS for ssl: listeners: "stdlib" (ssl.SSLObject, twistedchat.server.tls) or "twisted"
    tls_engine: str = "stdlib"
    #: stdlib TLS: seconds a connection's output is gathered after a write (fewer, larger records)
    tls_write_interval: float = 0.0

    @property
    def flood_control(self) -> bool:
        return self.flood_rate > 0
