"""A real ``redis-server`` on a free loopback port in a temp dir, and chat nodes joined to it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
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
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start with an empty data set; returns once it accepts connections (bounded)."""
        workdir = self.tmp_path / f"redis-{time.monotonic_ns()}"
        workdir.mkdir()
        try:
            self.process = start_redis_server(self.binary, self.port, workdir, REDIS_START)
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


async def all_see_member(nodes: list[Node], channel: str, nick: str) -> None:
    await wait_until(lambda: all(n.member(channel, nick) for n in nodes),
                     f"every node has {nick} in {channel}")
