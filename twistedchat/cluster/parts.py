"""What every part of a cluster node may use: its core, reactor, Redis links and name in Redis."""

from __future__ import annotations

from typing import Any

from twistedchat.cluster.resp import RedisLink
from twistedchat.server.core import ServerCore


class NodeParts:
    """The attributes :class:`~twistedchat.cluster.node.ClusterNode` gives each of its mixins."""

    core: ServerCore
    reactor: Any
    #: The network's keys in Redis start with this.
    prefix: str
    node_id: str
    #: This registration's id in Redis (a new one each time the control connection registers).
    incarnation: str
    #: The connection that runs scripts, and the one that receives pub/sub messages.
    control: RedisLink
    subscriber: RedisLink
