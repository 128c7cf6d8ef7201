"""``--metrics DESC``: Prometheus metrics at ``/metrics`` and a ``/health`` check, on their own port.

The gauges are read from the running factory and core at scrape time. prometheus_client's
Twisted resource runs its WSGI app in the reactor's thread pool, so the collector only reads
sizes and integer counters (single, atomic reads under the GIL), never iterates live state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.twisted import MetricsResource
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from twistedchat import __version__

if TYPE_CHECKING:
    from twistedchat.server.relay import Relay
    from twistedchat.server.service import ChatService


#: The core's event counters (``ServerCore.counters``) as Prometheus counters.
COUNTERS = (
    ("flood_drops", "twistedchat_flood_drops", "Clients disconnected for flooding."),
    ("sendq_drops", "twistedchat_sendq_drops", "Clients dropped for passing their sendq."),
    ("bans_hit", "twistedchat_bans_hit", "Connections refused or removed by a K-line or D-line."),
    ("oper_failures", "twistedchat_oper_failures", "Failed OPER attempts."),
    ("throttled", "twistedchat_throttled_connections",
     "Connections refused by connect throttling."),
    ("cluster_inbox_batches_lost", "twistedchat_cluster_inbox_batches_lost",
     "Batches of channel and private messages for this node's users lost past the cap of "
     "the inboxes' shared log (--cluster)."),
    ("cluster_cut_off", "twistedchat_cluster_cut_off",
     "Times this node had no working Redis for 3 s and split the other nodes' users "
     "(--cluster)."),
)


class RelayCounter:
    """A relay-bus subscriber counting relayed lines by command (one call per line, not per
    recipient); Prometheus's ``rate()`` turns the totals into messages per second."""

    def __init__(self) -> None:
        self.by_command: dict[str, int] = {}

    def __call__(self, relay: Relay) -> None:
        command = relay.message.command
        self.by_command[command] = self.by_command.get(command, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """A copy, safe to take from the scrape thread (``dict(d)`` runs without releasing the
        GIL, so the reactor thread cannot change it halfway)."""
        return dict(self.by_command)


class ChatCollector(Collector):
    """The daemon's gauges, from :meth:`ChatService.status` at each scrape, and relay counts."""

    def __init__(self, chat: ChatService, relays: RelayCounter) -> None:
        self.chat = chat
        self.relays = relays

    def collect(self) -> Iterator[Any]:
        status = self.chat.status()
        config = self.chat.config
        yield InfoMetricFamily("twistedchat", "The running daemon.",
                               value={"version": __version__, "server": config.name,
                                      "network": config.network})
        gauges = (
            ("twistedchat_connections", "Open client connections.", status.connections),
            ("twistedchat_registered_users", "Users who completed registration.",
             status.registered_users),
            ("twistedchat_operators", "Users with operator status.", status.operators),
            ("twistedchat_channels", "Channels with at least one member.", status.channels),
            ("twistedchat_users_peak", "Most registered users at once since the start.",
             status.users_peak),
            ("twistedchat_max_clients", "The connection limit (0: none).", config.max_clients),
            ("twistedchat_listeners", "Listening ports.", status.listeners),
            ("twistedchat_uptime_seconds", "Seconds since the daemon started.", status.uptime),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        reloads = CounterMetricFamily("twistedchat_config_reloads",
                                      "Configuration reloads (SIGHUP, REHASH).", labels=["result"])
        reloads.add_metric(["ok"], status.reloads_ok)
        reloads.add_metric(["refused"], status.reloads_refused)
        yield reloads
        relayed = CounterMetricFamily("twistedchat_relayed_lines",
                                      "Lines relayed to other users (PRIVMSG, JOIN, ...), counted "
                                      "once however many receive them.", labels=["command"])
        for command, count in sorted(self.relays.snapshot().items()):
            relayed.add_metric([command], count)
        yield relayed
        counters = dict(self.chat.factory.core.counters)
        for key, name, documentation in COUNTERS:
            yield CounterMetricFamily(name, documentation, value=counters.get(key, 0))


class HealthResource(Resource):
    """``/health``: 200 and a JSON summary while the daemon listens, 503 otherwise."""

    isLeaf = True

    def __init__(self, chat: ChatService) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource.__init__ is unannotated
        self.chat = chat

    def render_GET(self, request: Request) -> bytes:
        status = self.chat.status()
        healthy = bool(self.chat.running and status.listeners)
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"content-type", b"application/json")
        body = {"status": "ok" if healthy else "unavailable",
                "connections": status.connections, "listeners": status.listeners}
        return json.dumps(body).encode() + b"\n"


def metrics_registry(chat: ChatService) -> CollectorRegistry:
    """A registry of its own (not the global one) with the chat gauges, a relay counter on the
    core's relay bus, and the process metrics."""
    relays = RelayCounter()
    chat.factory.core.bus.subscribe(relays)
    registry = CollectorRegistry()
    registry.register(ChatCollector(chat, relays))
    ProcessCollector(registry=registry)
    return registry


def metrics_site(chat: ChatService) -> Site:
    """The web site served on ``--metrics``: ``/metrics`` and ``/health``."""
    root = Resource()
    resource = MetricsResource(metrics_registry(chat))  # type: ignore[no-untyped-call]  # prometheus_client's is unannotated
    root.putChild(b"metrics", resource)
    root.putChild(b"health", HealthResource(chat))
    site = Site(root)
    site.noisy = False
    return site
