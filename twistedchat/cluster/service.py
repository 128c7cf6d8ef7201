"""The cluster as ``twistd chat`` runs it: ``--cluster`` joins a node to the network, ``--workers``
starts N of them on one host behind the same ports, and a supervisor restarts one that dies."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from twistedchat.cluster.resp import parse_url
from twistedchat.server.config import ConfigError, ServerConfig

log = Logger()

#: Seconds a supervisor waits before starting a worker again (doubled while it keeps dying, up to
#: :data:`RESTART_MAX`).
RESTART_FIRST = 0.1
RESTART_MAX = 5.0


def cluster_url(value: Any) -> str:
    """The ``cluster`` setting: a ``redis://host:port/db`` URL."""
    value = str(value)
    try:
        parse_url(value)
    except ValueError as problem:
        raise ConfigError(str(problem)) from None
    return value


def worker_count(value: Any) -> int:
    """The ``workers`` setting: a number of processes, or ``auto`` for one per core."""
    text = str(value)
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise ConfigError(f"expected a number from 1 to 256 or auto, not {text!r}")
    return int(text)


#: The longest gather window a node may be given (seconds): the hop's latency budget is 2 ms at p99.
MAX_GATHER = 0.01


def gather_window(value: Any) -> float:
    """The ``cluster-gather`` setting: seconds from 0 to :data:`MAX_GATHER`."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected seconds from 0 to {MAX_GATHER:g}, not {value!r}") from None
    if isinstance(value, bool) or not 0 <= seconds <= MAX_GATHER:
        raise ConfigError(f"expected seconds from 0 to {MAX_GATHER:g}, not {value!r}")
    return seconds


def check_workers(config: ServerConfig) -> None:
    """Workers are nodes of a network, and share only tcp: ports (SO_REUSEPORT)."""
    if config.cluster is None:
        raise ConfigError("workers: each worker is a node of a network: set cluster "
                          "(redis://host:port/db) too")
    for description in config.ports:
        if description.split(":", 1)[0] != "tcp":
            raise ConfigError(f"workers: only tcp: ports can be shared by workers, "
                              f"not {description!r}")


def reuse_port_descriptions(ports: list[str]) -> list[str]:
    """``tcp:PORT[:interface=...]`` -> ``reuseport:PORT[...]`` (the plugin in twisted/plugins)."""
    return ["reuseport:" + d.split(":", 1)[1] if d.startswith("tcp:") else d for d in ports]


def worker_arguments(raw: list[str], ports: list[str]) -> list[str]:
    """The command line of one worker: the supervisor's, less its ports and ``--workers``,
    plus each port as a ``reuseport:`` listener and ``--workers 1``."""
    out: list[str] = []
    skip = False
    for arg in raw:
        if skip:
            skip = False
        elif arg in ("--workers", "--port", "-p"):
            skip = True
        elif not arg.startswith(("--workers=", "--port=")) and not (
                arg.startswith("-p") and not arg.startswith("--")):
            out.append(arg)
    for description in reuse_port_descriptions(ports):
        out += ["--port", description]
    return [*out, "--workers", "1"]


class ClusterService(service.Service):
    """Joins the chat service's core to the network in Redis while the daemon runs."""

    def __init__(self, core: Any, url: str, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        from twistedchat.cluster.node import ClusterNode

        self.reactor = reactor
        self.node = ClusterNode(core, url, reactor)

    def startService(self) -> None:
        super().startService()
        self.node.start()
        # Leave the network (nicks freed, users split everywhere) before the reactor stops,
        # whatever the order in which the chat service stops its parts.
        self.reactor.addSystemEventTrigger("before", "shutdown", self.node.stop)


class WorkerProcess(protocol.ProcessProtocol):
    """One worker as its supervisor sees it."""

    def __init__(self, supervisor: Supervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.ended: defer.Deferred[None] = defer.Deferred()

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)
        self.supervisor.worker_ended(self, reason)


class Supervisor(service.Service):
    """Runs N workers (``twistd -n chat ...`` on ``reuseport:`` ports) and restarts one that dies."""

    def __init__(self, arguments: list[str], count: int, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.arguments = arguments
        self.count = count
        self.workers: dict[int, WorkerProcess] = {}
        self.delays: dict[int, float] = {}
        self.restarts = 0

    def startService(self) -> None:
        super().startService()
        for index in range(self.count):
            self.spawn(index)

    def spawn(self, index: int) -> None:
        worker = WorkerProcess(self, index)
        self.workers[index] = worker
        # twistd (not twist): it opens the listeners in privilegedStartService; -n logs to stdout.
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "-n", "--pidfile=", "chat", *self.arguments]
        self.reactor.spawnProcess(worker, sys.executable, argv, env=os.environ.copy(),
                                  childFDs={0: "w", 1: 1, 2: 2})
        transport: Any = worker.transport
        log.info("started worker {index} (pid {pid})", index=index, pid=transport.pid)

    def worker_ended(self, worker: WorkerProcess, reason: Any) -> None:
        if self.workers.get(worker.index) is not worker:
            return
        del self.workers[worker.index]
        if not self.running:
            return
        delay = self.delays.get(worker.index, RESTART_FIRST)
        self.delays[worker.index] = min(delay * 2, RESTART_MAX)
        self.restarts += 1
        log.warn("worker {index} ended ({reason}); starting it again in {delay:g} s",
                 index=worker.index, reason=reason.value, delay=delay)
        self.reactor.callLater(delay, self._respawn, worker.index)

    def _respawn(self, index: int) -> None:
        if self.running and index not in self.workers:
            self.spawn(index)

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()
        ended = []
        for worker in list(self.workers.values()):
            ended.append(worker.ended)
            transport: Any = worker.transport
            try:
                transport.signalProcess("TERM")
            except error.ProcessExitedAlready:
                pass
        done = defer.DeferredList(ended)

        def clean_exit(result: Any) -> Any:
            # SIGTERM asked us to stop and every worker has: a clean exit, not death by signal.
            if getattr(self.reactor, "_exitSignal", None) == signal.SIGTERM:
                self.reactor._exitSignal = None
            return result

        return done.addCallback(clean_exit)


