"""A real ``redis-server`` on a free loopback port in a temp dir, and chat nodes joined to it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from conftest import RunningServer
from helpers import free_port, wait_until

from bench.servers import start_redis_server
from twistedchat.cluster.node import ClusterNode
from twistedchat.server.config import ServerConfig

#: Seconds redis-server may take to say it is ready.
REDIS_START = 15.0


class RedisServer:
    """``redis-server`` from Debian's package: no persistence, killed (and restarted) at will."""

    def __init__(self, tmp_path: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (scripts/system-deps.sh installs it)")
        self.binary = binary
        self.port = free_port()
        self.tmp_path = tmp_path
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir: Path | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, keep_data: bool = False) -> None:
        """Start with an empty data set (or, ``keep_data``, the one saved by
        :meth:`shutdown_saving`); returns once it accepts connections (bounded)."""
        if not keep_data or self.workdir is None:
            self.workdir = self.tmp_path / f"redis-{time.monotonic_ns()}"
            self.workdir.mkdir()
        try:
            self.process = start_redis_server(self.binary, self.port, self.workdir, REDIS_START)
        except RuntimeError as problem:
            raise AssertionError(str(problem)) from None

    def kill(self) -> None:
        """SIGKILL: the data (kept in memory only) is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def shutdown_saving(self) -> None:
        """Stop after writing the data to disk, as a Redis with persistence restarts."""
        self.cli("SHUTDOWN", "SAVE")
        assert self.process is not None
        self.process.wait(10)
        self.kill()

    def cli(self, *args: str) -> str:
        """A ``redis-cli`` command's output (blocking; for checks between reactor waits)."""
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout


class Node:
    """One chat daemon in this process, joined to the network in Redis."""

    def __init__(self, name: str, url: str, **settings: Any) -> None:
        config = ServerConfig(name=name, network="ClusterNet", flood_rate=0, max_per_ip=0, **settings)
        self.server = RunningServer(config)
        self.core = self.server.factory.core
        from twisted.internet import reactor

        self.cluster = ClusterNode(self.core, url, reactor, node_id=name)

    @property
    def client_endpoint(self) -> str:
        return self.server.client_endpoint

    async def start(self) -> None:
        await self.server.start()
        await self.cluster.start()

    async def stop(self) -> None:
        await self.cluster.stop()
        await self.server.stop()

    def knows(self, nick: str) -> bool:
        return self.core.state.find_user(nick) is not None

    def member(self, channel: str, nick: str) -> bool:
        found = self.core.state.find_channel(channel)
        user = self.core.state.find_user(nick)
        return found is not None and user is not None and user in found.members


async def all_know(nodes: list[Node], *nicks: str) -> None:
    """Wait until every node's replica has every nick."""
    await wait_until(lambda: all(n.knows(nick) for n in nodes for nick in nicks),
                     f"every node knows {nicks}")


def drop_next(node: Node, count: int, channel_suffix: bytes = b"") -> list[bytes]:
    """Make pub/sub lose the next ``count`` messages to ``node`` (on channels ending with
    ``channel_suffix``), as at-most-once delivery may; returns the list they are kept in."""
    dropped: list[bytes] = []
    deliver = node.cluster._on_message

    def lossy(channel: bytes, data: bytes) -> None:
        if channel.endswith(channel_suffix) and len(dropped) < count:
            dropped.append(data)
        else:
            deliver(channel, data)

    node.cluster.subscriber.current.listen(lossy)
    return dropped


async def all_see_member(nodes: list[Node], channel: str, nick: str) -> None:
    await wait_until(lambda: all(n.member(channel, nick) for n in nodes),
                     f"every node has {nick} in {channel}")


@pytest_twisted.async_yield_fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A real redis-server for one test, killed after it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest_twisted.async_yield_fixture
async def network(redis: RedisServer) -> AsyncIterator[list[Node]]:
    """Three nodes (a.node, b.node, c.node) of one network on that Redis."""
    nodes = [Node(name, redis.url) for name in ("a.node", "b.node", "c.node")]
    for node in nodes:
        await node.start()
    yield nodes
    for node in nodes:
        await node.stop()


@pytest_twisted.async_yield_fixture
async def services_network(redis: RedisServer) -> AsyncIterator[list[Node]]:
    """Three nodes sharing one account store (as they would one PostgreSQL), with an operator
    account ``root`` / ``s3cret``."""
    from twisted.internet import reactor

    from twistedchat.server.accounts import attach_store
    from twistedchat.storage.memory import MemoryStore

    store = MemoryStore()
    nodes = [Node(name, redis.url, opers={"root": "s3cret"})
             for name in ("a.node", "b.node", "c.node")]
    for node in nodes:
        attach_store(node.core, store, reactor)
        await node.start()
    yield nodes
    for node in nodes:
        await node.stop()
