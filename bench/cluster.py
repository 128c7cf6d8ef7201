"""One network, many processes: a 2-node network on Redis beside one process, at the same loads.

Each run starts, one after another and each from fresh processes:

- ``single``: one twistedchat process (no cluster), pinned to CPU 0;
- ``2-nodes``: a ``redis-server`` (Debian's, in a temp dir) and two twistedchat nodes with
  ``--cluster redis://…`` on two ports, all three pinned to CPU 0; the generator's clients
  alternate between the two ports, so half of every message's deliveries cross the hop;
- ``workers-2``: ``redis-server`` and ``twistd chat --workers 2 --cluster …`` on one port,
  pinned to no core (the kernel spreads the workers over both), the generator still on CPU 1.

The load generator (``bench.loadgen``, pinned to CPU 1) registers N clients into one channel and
runs the same fixed-rate and saturation loads as ``bench.run`` against each. It reads the CPU of
every server process (each node, Redis, the workers' supervisor) around each phase, times every
fixed-rate delivery, tells deliveries between nodes from local ones (the sender's node is marked
in the message text), and counts Redis's script calls (one per batch of events). Figures are per
run, with ratios to the ``single`` run of the same round, since the machine may be shared.

``python -m bench.cluster`` (see ``--help``; ``--quick`` is a seconds-long run at 5 clients)
prints the tables and writes the raw figures to ``bench/results-cluster.json``; ``--write``
also rewrites the section between the cluster markers in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.run import machine_description, write_readme
from bench.servers import (
    PYTHON,
    REDIS_SERVER,
    REPO,
    _twistedchat_command,
    _wait_listening,
    child_pids,
    free_port,
    listeners_on,
    pinned,
    raise_nofile,
    start_redis_server,
    stop_processes,
)

BENCH_DIR = Path(__file__).resolve().parent
MARKERS = ("<!-- bench:cluster:start -->", "<!-- bench:cluster:end -->")
NETWORK = "BenchNet"
SERVER_CPU, GENERATOR_CPU = 0, 1
CONFIGS = ("single", "2-nodes", "workers-2")
#: Seconds the nodes (or workers) may take to listen and register in Redis.
START_SECONDS = 30.0


@dataclass
class Setup:
    """The processes of one configuration: ports clients use, and each process's pid and label."""

    ports: list[int]
    pids: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    redis_port: int = 0


def _chat_command(port: int, tmp: Path, db: str, *extra: str) -> list[str]:
    command = _twistedchat_command(port, tmp, False)
    command[command.index("--db") + 1] = db
    return [*command, "--network", NETWORK, *extra]


def _spawn(command: list[str], cpu: int | None, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(pinned(command, cpu), cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_nofile,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip


def _redis_nodes(port: int) -> int:
    """How many nodes the network in Redis lists as alive."""
    done = subprocess.run(["redis-cli", "-p", str(port), "HLEN", f"twistedchat:{NETWORK}:nodes"],
                          capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def _wait_for(what: str, check: object, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not check():  # type: ignore[operator]
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "; ".join(log.read_text(errors="replace")[-1500:] for log in logs if log.exists())
            raise RuntimeError(f"{what} {'exited' if dead else 'timed out'}: {tails}")
        time.sleep(0.1)


@contextlib.contextmanager
def started(config: str, db: str, node_options: tuple[str, ...] = ()) -> Iterator[Setup]:
    """Start one configuration's processes in a temp dir; stop them all afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-cluster-{config}-") as tmpdir:
        tmp = Path(tmpdir)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if config == "single":
                port = free_port()
                log = tmp / "server.out"
                procs.append(_spawn(_chat_command(port, tmp, db), SERVER_CPU, log))
                _wait_listening(port, procs[0], START_SECONDS)
                setup = Setup([port], [procs[0].pid], ["server"])
            else:
                redis_port = free_port()
                workdir = tmp / "redis"
                workdir.mkdir()
                cpu = SERVER_CPU if config == "2-nodes" else None
                procs.append(start_redis_server(REDIS_SERVER, redis_port, workdir,
                                                prefix=pinned([], cpu)))  # fmt: skip
                url = f"redis://127.0.0.1:{redis_port}/0"
                if config == "2-nodes":
                    ports, logs = [free_port(), free_port()], []
                    for name, port in zip("ab", ports, strict=True):
                        node_tmp = tmp / name
                        node_tmp.mkdir()
                        logs.append(node_tmp / "server.out")
                        procs.append(_spawn(_chat_command(port, node_tmp, db, "--cluster", url,
                                                          "--name", f"{name}.bench",
                                                          *node_options),
                                            SERVER_CPU, logs[-1]))  # fmt: skip
                    for port, proc in zip(ports, procs[1:], strict=True):
                        _wait_listening(port, proc, START_SECONDS)
                    _wait_for("the nodes", lambda: _redis_nodes(redis_port) == 2, procs, logs)
                    setup = Setup(ports, [p.pid for p in procs[1:]] + [procs[0].pid],
                                  ["node a", "node b", "redis"], redis_port)  # fmt: skip
                else:
                    port = free_port()
                    log = tmp / "server.out"
                    procs.append(_spawn(_chat_command(port, tmp, db, "--cluster", url,
                                                      "--workers", "2", *node_options),
                                        None, log))  # fmt: skip
                    _wait_for("the workers", lambda: listeners_on(port) == 2
                              and _redis_nodes(redis_port) == 2, procs, [log])  # fmt: skip
                    workers = sorted(child_pids(procs[1].pid))
                    setup = Setup([port], [*workers, procs[1].pid, procs[0].pid],
                                  [f"worker {i + 1}" for i in range(len(workers))]
                                  + ["supervisor", "redis"], redis_port)  # fmt: skip
            time.sleep(0.3)  # let the probe connections' close be processed
            yield setup
        finally:
            stop_processes(procs, 15.0)


def socket_count(pid: int) -> int:
    """Open sockets of a process (its client connections, plus a few of its own)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def measure(config: str, args: argparse.Namespace, clients: int, rate: float) -> dict:
    """One configuration under one load-generator run; the generator's figures plus ours."""
    load = os.getloadavg()
    with started(config, args.db, tuple(args.node_option)) as setup:
        command = [
            PYTHON, "-m", "bench.loadgen", "--port", str(setup.ports[0]),
            "--other-ports", ",".join(str(p) for p in setup.ports[1:]),
            "--server-pid", ",".join(str(p) for p in setup.pids),
            "--redis-port", str(setup.redis_port),
            "--clients", str(clients), "--senders", str(args.senders),
            "--rate", str(rate), "--fixed-seconds", str(args.fixed_seconds),
            "--saturation-seconds", str(args.saturation_seconds),
            "--register-timeout", str(args.register_timeout),
        ]  # fmt: skip
        # Sampled while the generator runs: how the clients were spread over the processes.
        sockets = [0] * len(setup.pids)
        generator = subprocess.Popen(pinned(command, GENERATOR_CPU), cwd=REPO, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
        deadline = time.monotonic() + args.register_timeout + 300
        while True:
            try:
                stdout, stderr = generator.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    generator.kill()
                    generator.communicate()
                    raise RuntimeError("load generator did not finish in time") from None
                sockets = [max(old, socket_count(pid)) for old, pid in zip(sockets, setup.pids,
                                                                            strict=True)]
    if generator.returncode != 0 or not stdout.strip():
        raise RuntimeError(f"load generator failed: {stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"config": config, "load_average": load, "labels": setup.labels,
            "ports": len(setup.ports), "sockets": sockets, **result}  # fmt: skip


LABELS = {
    "deliveries_per_s": "deliveries/s",
    "server_cpu_us_per_delivery": "CPU µs per delivery, all server processes",
    "generator_cpu_percent": "load generator CPU (% of its core)",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p99_ms": "latency p99 (ms)",
    "lost": "lost messages",
}


def _fmt_ratio(value: float, reference: float | None) -> str:
    return f" ({value / reference:.2f}×)" if reference else ""


def round_table(runs: dict[str, dict], clients: int) -> str:
    """One round's table: every configuration's figures, ratios to ``single`` of that round."""
    names = [c for c in CONFIGS if c in runs]
    single = runs.get("single")
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cells: list[str]) -> None:
        rows.append((label, cells))

    def fig(phase: str, key: str, fmt: str, ratio: bool = True) -> None:
        ref = single[phase][key] if single and ratio else None
        row(f"{phase}: {LABELS[key]}",
            [format(runs[c][phase][key], fmt) + (_fmt_ratio(runs[c][phase][key], ref)
             if c != "single" else "") for c in names])  # fmt: skip

    row("sockets open per process (most seen; clients + its own)", [
        ", ".join(f"{label} {n:,}" for label, n in zip(runs[c]["labels"], runs[c]["sockets"],
                                                         strict=True)) for c in names])  # fmt: skip
    for phase in ("fixed", "saturation"):
        fig(phase, "deliveries_per_s", ",.0f")
        fig(phase, "server_cpu_us_per_delivery", ".3f")
        row(f"{phase}: CPU µs per delivery, by process", [
            ", ".join(f"{label} {1e6 * cpu / max(1, runs[c][phase]['received']):.3f}"
                      for label, cpu in zip(runs[c]["labels"], runs[c][phase]["server_cpu_s_each"],
                                            strict=True))
            for c in names])  # fmt: skip
        row(f"{phase}: CPU % of a core, by process", [
            ", ".join(f"{label} {100 * cpu / max(1e-9, runs[c][phase]['seconds']):.0f} %"
                      for label, cpu in zip(runs[c]["labels"], runs[c][phase]["server_cpu_s_each"],
                                            strict=True))
            for c in names])  # fmt: skip
        fig(phase, "generator_cpu_percent", ".0f", ratio=False)
        fig(phase, "latency_p50_ms", ".2f")
        fig(phase, "latency_p99_ms", ".2f")
        row(f"{phase}: latency p50/p99 (ms), same node; across nodes", [
            f"{runs[c][phase]['latency_local_p50_ms']:.2f} / "
            f"{runs[c][phase]['latency_local_p99_ms']:.2f}; "
            f"{runs[c][phase]['latency_remote_p50_ms']:.2f} / "
            f"{runs[c][phase]['latency_remote_p99_ms']:.2f}"
            if runs[c]["ports"] > 1 else "—" for c in names])  # fmt: skip
        row(f"{phase}: Redis script calls/s (lines per call)", [
            f"{runs[c][phase]['redis_script_calls'] / max(1e-9, runs[c][phase]['seconds']):,.0f} "
            f"({runs[c][phase]['sent'] / max(1, runs[c][phase]['redis_script_calls']):.1f})"
            if runs[c][phase]["redis_script_calls"] else "—" for c in names])  # fmt: skip
        fig(phase, "lost", ",d", ratio=False)
    load = ", ".join(f"{c} {runs[c]['load_average'][0]:.1f}" for c in names)
    out = [f"| figure ({clients:,} clients) | " + " | ".join(names) + " |",
           "|---|" + "---:|" * len(names)]  # fmt: skip
    out += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    out.append(f"| load average (1 min) at start | {load} |" + " |" * (len(names) - 1))
    return "\n".join(out)


def summary(rounds: list[dict[str, dict]], clients: int) -> str:
    """The issue's targets over every round: the range of each ratio."""

    def ratios(config: str, phase: str, key: str) -> list[float]:
        return [r[config][phase][key] / r["single"][phase][key] for r in rounds
                if config in r and "single" in r and r["single"][phase][key]]

    def diffs(config: str, phase: str, key: str) -> list[float]:
        return [r[config][phase][key] - r["single"][phase][key] for r in rounds
                if config in r and "single" in r]

    def span(values: list[float], fmt: str = ".2f", unit: str = "×") -> str:
        if not values:
            return "not measured"
        low, high = min(values), max(values)
        median = statistics.median(values)
        return (f"{format(median, fmt)}{unit} (range {format(low, fmt)}–{format(high, fmt)}"
                f"{unit}, {len(values)} rounds)")  # fmt: skip

    cpu = ratios("2-nodes", "fixed", "server_cpu_us_per_delivery")
    p99 = diffs("2-nodes", "fixed", "latency_p99_ms")
    single_p99 = [r["single"]["fixed"]["latency_p99_ms"] for r in rounds if "single" in r]
    # Within the 2-node run itself: deliveries across the hop against those inside one node.
    hop = {q: [r["2-nodes"]["fixed"][f"latency_remote_{q}_ms"]
               - r["2-nodes"]["fixed"][f"latency_local_{q}_ms"] for r in rounds if "2-nodes" in r]
           for q in ("p50", "p99")}  # fmt: skip
    sat_nodes = ratios("2-nodes", "saturation", "deliveries_per_s")
    sat_workers = ratios("workers-2", "saturation", "deliveries_per_s")
    sat_cpu = {c: ratios(c, "saturation", "server_cpu_us_per_delivery")
               for c in ("2-nodes", "workers-2")}  # fmt: skip
    lines = ["| target | measured (median of the rounds' same-round ratios) | verdict |",
             "|---|---|---|",
             f"| {clients:,} clients, fixed load: 2-node CPU per delivery (nodes + Redis) ≤ 1.3× "
             f"one process | "
             f"{span(cpu)} | {'met' if cpu and max(cpu) <= 1.3 else 'missed' if cpu else '—'} |",
             f"| {clients:,} clients, fixed load: the hop adds ≤ 2 ms to p99 | "
             f"{span(p99, '+.2f', ' ms')} | "
             f"{'met' if p99 and max(p99) <= 2 else 'missed' if p99 else '—'} (one process's "
             f"own p99: {span(single_p99, '.1f', ' ms')}) |",
             f"| {clients:,} clients, fixed load, inside the 2-node run: across-node minus "
             f"same-node latency | p50 {span(hop['p50'], '+.2f', ' ms')}; p99 "
             f"{span(hop['p99'], '+.2f', ' ms')} | reported |",
             f"| {clients:,} clients, saturation: `--workers 2` (both cores, generator on CPU 1) "
             f"vs one process | "
             f"{span(sat_workers)} deliveries/s | reported |",
             f"| {clients:,} clients, saturation: 2 nodes + Redis on one core vs one process | "
             f"{span(sat_nodes)} deliveries/s | reported |",
             f"| {clients:,} clients, saturation: CPU per delivery (all processes) vs one process "
             f"| 2 nodes {span(sat_cpu['2-nodes'])}; `--workers 2` {span(sat_cpu['workers-2'])} "
             f"| reported |"]  # fmt: skip
    return "\n".join(lines)


def parse_loads(text: str) -> list[tuple[int, float]]:
    """``CLIENTSxRATE,...`` (e.g. ``1000x5,20x100``) -> [(clients, fixed-load msg/s per sender)]."""
    loads = []
    for item in text.split(","):
        clients, _, rate = item.strip().partition("x")
        loads.append((int(clients), float(rate or 5)))
    return loads


def shown_command(argv: list[str]) -> str:
    """The command line as run, less where its output went (``--readme``, ``--json``)."""
    shown: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--readme", "--json", "--from-json"):
            skip = True
        elif not arg.startswith(("--readme=", "--json=", "--from-json=")):
            shown.append(arg)
    return " ".join(["python -m bench.cluster", *shown])


def render(results: dict[str, list[dict[str, dict]]], args: argparse.Namespace,
           started_at: str, elapsed: float, machine: str) -> str:  # fmt: skip
    command = shown_command(args.argv)
    loads = "; ".join(f"{clients:,} clients: {args.senders} senders × {rate:g} msg/s"
                      for clients, rate in args.loads)  # fmt: skip
    out = [f"Run {started_at} UTC on {machine}. Command: `{command}`; "
           f"took {elapsed / 60:.1f} min. {args.rounds} round(s) of {', '.join(args.configs)} per "
           f"load; fixed load ({loads}) for {args.fixed_seconds:g} s, saturation "
           f"{args.saturation_seconds:g} s; history store `{args.db}`.", ""]  # fmt: skip
    for (clients, _), rounds in zip(args.loads, results.values(), strict=True):
        out += [summary(rounds, clients), ""]
    for (clients, _), rounds in zip(args.loads, results.values(), strict=True):
        for index, runs in enumerate(rounds, 1):
            out += [f"#### {clients:,} clients, round {index}", "", round_table(runs, clients), ""]
    return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="seconds-long run at 5 clients")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of "
                   + ", ".join(CONFIGS))  # fmt: skip
    p.add_argument("--loads", default="1000x5,20x100",
                   help="CLIENTSxRATE,...: clients in the channel and the fixed load's messages/s "
                        "per sender, for each load [1000x5,20x100]")
    p.add_argument("--rounds", type=int, default=3, help="every configuration once per round")
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--fixed-seconds", type=float, default=5.0)
    p.add_argument("--saturation-seconds", type=float, default=4.0)
    p.add_argument("--register-timeout", type=float, default=90.0)
    p.add_argument("--db", default="memory:", help="every server's --db [memory:]")
    p.add_argument("--node-option", action="append", default=[],
                   help="an option for every cluster node's twistd chat (repeatable), e.g. "
                        "--node-option=--cluster-gather=0.002")
    p.add_argument("--json", type=Path, default=BENCH_DIR / "results-cluster.json")
    p.add_argument("--readme", type=Path, default=BENCH_DIR / "README.md")
    p.add_argument("--write", action="store_true",
                   help="also rewrite the cluster section of the README")
    p.add_argument("--from-json", type=Path,
                   help="measure nothing: render (and with --write, write) a saved results file")
    args = p.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        p.error(f"unknown configuration(s) {', '.join(sorted(unknown))}; known: {', '.join(CONFIGS)}")
    if args.quick:
        args.loads, args.rounds, args.senders = "5x20", 1, 2
        args.fixed_seconds, args.saturation_seconds, args.register_timeout = 1.0, 1.0, 20.0
    args.loads = parse_loads(args.loads)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        text = render(saved["loads"], parse_args(saved["argv"]), saved["started"],
                      saved["elapsed"], saved["machine"])  # fmt: skip
        text += "".join(f"\n- failed: {f}" for f in saved["failures"])
        print(text)
        if args.write:
            write_readme(args.readme, text, MARKERS, "One network, many processes: figures")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{__name__}: terminated"))
    if any(c != "single" for c in args.configs) and not (
            os.path.exists(REDIS_SERVER) and shutil.which("redis-cli")):
        print("redis-server and redis-cli are needed (scripts/system-deps.sh installs them)")
        return 2
    raise_nofile()
    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    machine = machine_description()
    t0 = time.monotonic()
    results: dict[str, list[dict[str, dict]]] = {}
    failures: list[str] = []
    for clients, rate in args.loads:
        rounds = results.setdefault(f"{clients}x{rate:g}", [])
        for index in range(args.rounds):
            runs: dict[str, dict] = {}
            for config in args.configs:
                print(f"[{time.monotonic() - t0:5.0f} s] {clients} clients, round {index + 1}/"
                      f"{args.rounds}: {config}, load average {os.getloadavg()[0]:.1f}",
                      flush=True)  # fmt: skip
                try:
                    run = measure(config, args, clients, rate)
                except (RuntimeError, subprocess.SubprocessError, OSError) as err:
                    failures.append(f"{clients} clients, round {index + 1}, {config}: {err}")
                    print(f"  failed: {err}", flush=True)
                    continue
                runs[config] = run
                print(f"  joined {run['joined']}/{clients}; fixed "
                      f"{run['fixed']['server_cpu_us_per_delivery']:.3f} µs/delivery, p99 "
                      f"{run['fixed']['latency_p99_ms']:.2f} ms; saturation "
                      f"{run['saturation']['deliveries_per_s']:,.0f}/s; errors {run['errors']}",
                      flush=True)  # fmt: skip
            rounds.append(runs)
    elapsed = time.monotonic() - t0
    text = render(results, args, started_at, elapsed, machine)
    text += "".join(f"\n- failed: {f}" for f in failures)
    print(text)
    args.json.write_text(json.dumps({"started": started_at, "machine": machine, "argv": args.argv,
                                     "elapsed": elapsed, "failures": failures, "loads": results},
                                    indent=1))  # fmt: skip
    if args.write:
        write_readme(args.readme, text, MARKERS, "One network, many processes: figures")
    print(f"wrote {args.json}" + (f" and {args.readme}" if args.write else ""))
    complete = all(len(runs) == len(args.configs) and all(
        run["joined"] == run["clients"] for run in runs.values())
        for rounds in results.values() for runs in rounds)  # fmt: skip
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
