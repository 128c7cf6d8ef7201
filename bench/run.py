"""One command for the whole bench: every server, every size, the same loads, one table each.

For each size and each server (a fresh process per measurement, pinned to CPU 0), the load
generator (``bench.loadgen``, pinned to CPU 1) registers the clients into one channel, measures
the server's idle RSS, runs the fixed-rate load and then the saturation load. Figures are medians
over ``--reps`` runs; each cell also shows the ratio to ngircd's figure.

``make bench`` (= ``python -m bench.run``) runs the full set and rewrites the results section of
``bench/README.md``; ``--quick`` is a seconds-long run at tiny size (the smoke test uses it).
``make bench-tls`` (= ``python -m bench.run --tls``) runs the same loads over TLS (every server
listening with TLS only, the generator's clients speaking TLS, a handshake storm first) and
rewrites the README's TLS section and ``bench/results-tls.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import saturation_window
from bench.servers import NGIRCD, SERVERS, ensure_ngircd, pinned, raise_nofile, running

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR / "README.md"
RESULTS_START = "<!-- bench:results:start -->"
RESULTS_END = "<!-- bench:results:end -->"
TLS_MARKERS = ("<!-- bench:tls:start -->", "<!-- bench:tls:end -->")
REFERENCE = "ngircd"
SERVER_CPU, GENERATOR_CPU = 0, 1
TLS_NOTE = ("connect, handshake, close, at most as many at once as the registration window; "
            "then as many again offering a session ticket from one more handshake, where the "
            "server sent one (0 where it sent none)")  # fmt: skip


@dataclass(frozen=True)
class Figure:
    """One row of a result table: how to read it from a run and how to show it."""

    label: str
    path: tuple[str, ...]
    fmt: Callable[[float], str]
    higher_is_better: bool = True


def _count(v: float) -> str:
    return f"{v:,.0f}"


def _ms(v: float) -> str:
    return f"{v:.2f}"


def _us(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _kb(v: float) -> str:
    return f"{v / 1024:,.1f}"


def _pct(v: float) -> str:
    return f"{v:.0f} %"


#: Shown in TLS runs only, above the rest.
TLS_FIGURES = [
    Figure("TLS handshakes/s (connect, handshake, close)", ("handshakes_per_s",), _count),
    Figure("server CPU µs per TLS handshake", ("handshake_server_cpu_us_each",), _us, False),
    Figure("resumed TLS handshakes/s (session ticket)", ("resumed_handshakes_per_s",), _count),
    Figure("share of those that resumed", ("resumed_fraction",), lambda v: f"{100 * v:.0f} %"),
]  # fmt: skip

FIGURES = [
    Figure("registrations/s (connect, NICK/USER → 001)", ("registered_per_s",), _count),
    Figure("time until all registered (s)", ("register_seconds",), _ms, False),
    Figure("joins/s (JOIN → 366, all in one channel)", ("joined_per_s",), _count),
    Figure("time until all joined, after registering (s)", ("join_seconds",), _ms, False),
    Figure("RSS per idle registered client (KB)", ("rss_per_client_bytes",), _kb, False),
    Figure("RSS with all clients idle (MB)", ("rss_idle_bytes",), lambda v: f"{v / 2**20:.1f}", False),
    Figure("fixed: deliveries/s", ("fixed", "deliveries_per_s"), _count),
    Figure("fixed: server CPU (% of its core)", ("fixed", "server_cpu_percent"), _pct, False),
    Figure("fixed: server CPU µs per delivery", ("fixed", "server_cpu_us_per_delivery"), _us, False),
    Figure("fixed: latency p50 (ms)", ("fixed", "latency_p50_ms"), _ms, False),
    Figure("fixed: latency p99 (ms)", ("fixed", "latency_p99_ms"), _ms, False),
    Figure("fixed: latency max (ms)", ("fixed", "latency_max_ms"), _ms, False),
    Figure("fixed: lost messages", ("fixed", "lost"), _count, False),
    Figure("saturation: deliveries/s", ("saturation", "deliveries_per_s"), _count),
    Figure("saturation: server CPU µs per delivery", ("saturation", "server_cpu_us_per_delivery"), _us, False),
    Figure("saturation: server CPU (% of its core)", ("saturation", "server_cpu_percent"), _pct),
    Figure("saturation: latency p50 (ms)", ("saturation", "latency_p50_ms"), _ms, False),
    Figure("saturation: latency p99 (ms)", ("saturation", "latency_p99_ms"), _ms, False),
    Figure("saturation: lost messages", ("saturation", "lost"), _count, False),
    Figure("saturation: load generator CPU (%)", ("saturation", "generator_cpu_percent"), _pct, False),
]  # fmt: skip


def figure_value(run: dict, path: tuple[str, ...]) -> float:
    value: object = run
    for key in path:
        value = value[key]  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]


def median_run(runs: list[dict], clients: int) -> dict[tuple[str, ...], float | None]:
    """Each figure's median over the runs (each figure on its own).

    Message figures come only from runs where every client joined (the others had no message
    runs); a figure with no such run is None.
    """
    medians: dict[tuple[str, ...], float | None] = {}
    for figure in TLS_FIGURES + FIGURES:
        usable = [r for r in runs if len(figure.path) == 1 or r["joined"] >= clients]
        values = [figure_value(r, figure.path) for r in usable if figure.path[0] in r]
        medians[figure.path] = statistics.median(values) if values else None
    return medians


def listen_backlog(port: int) -> int:
    """The listening socket's accept backlog on ``port`` (from ``ss``), 0 if unknown."""
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10).stdout.split()  # fmt: skip
        return int(out[2])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return 0


def measure(server: str, clients: int, args: argparse.Namespace, pin: bool) -> dict:
    """Start ``server`` afresh, drive it with ``clients`` clients, return the generator's figures."""
    with running(SERVERS[server], SERVER_CPU if pin else None, tls=args.tls) as srv:
        backlog = listen_backlog(srv.port)
        window = max(1, min(64, backlog - 2)) if backlog else 8
        command = [
            sys.executable, "-m", "bench.loadgen", "--port", str(srv.port),
            "--server-pid", ",".join(map(str, srv.pids)), "--clients", str(clients),
            "--connect-window", str(window),
            "--register-timeout", str(args.register_timeout), "--senders", str(args.senders),
            "--rate", str(args.rate), "--fixed-seconds", str(args.fixed_seconds),
            "--saturation-seconds", str(args.saturation_seconds),
        ]  # fmt: skip
        if args.tls:
            command += ["--tls", "--handshakes", str(args.handshakes)]
        if srv.websocket_port:
            command += ["--websocket-port", str(srv.websocket_port),
                        "--websocket-clients", str(clients // 2)]
        limit = args.register_timeout * 2 + args.fixed_seconds + args.saturation_seconds + 240
        done = subprocess.run(pinned(command, GENERATOR_CPU if pin else None), cwd=BENCH_DIR.parent,
                              capture_output=True, text=True, timeout=limit)  # fmt: skip
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
        run = json.loads(done.stdout)
        run["connect_window"] = window
        run["twistedchat_commit"] = tree_commit()
        return run


def cell(value: float | None, reference: float | None, figure: Figure) -> str:
    if value is None:
        return "—"
    text = figure.fmt(value)
    if reference is None:
        return text
    if reference == 0:
        return text if value == 0 else f"{text} (ngircd 0)"
    return f"{text} ({value / reference:.2f}×)"


def size_table(clients: int, medians: dict[str, dict], notes: dict[str, list[str]],
               tls: bool = False) -> str:  # fmt: skip
    """A markdown table: one row per figure, one column per server, ratios to ngircd."""
    servers = list(medians)
    ref = medians.get(REFERENCE)
    lines = [f"### {clients:,} clients", ""]
    lines.append("| figure | " + " | ".join(servers) + " |")
    lines.append("|---|" + "---:|" * len(servers))
    for figure in (TLS_FIGURES if tls else []) + FIGURES:
        row = []
        for server in servers:
            value = medians[server][figure.path]
            reference = ref.get(figure.path) if ref is not None and server != REFERENCE else None
            row.append(cell(value, reference, figure))
        lines.append(f"| {figure.label} | " + " | ".join(row) + " |")
    for server in servers:
        for note in notes.get(server, []):
            lines.append(f"\n- {server}: {note}")
    return "\n".join(lines) + "\n"


def tree_commit() -> str:
    """The checkout's commit (``-dirty`` if it has uncommitted changes): what twistedchat ran."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=BENCH_DIR.parent,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def machine_description() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ngircd = "not installed"
    if os.path.exists(NGIRCD):
        version = subprocess.run([NGIRCD, "--version"], capture_output=True, text=True).stdout
        ngircd = version.split("-", 1)[0].strip() or "unknown"
    import twisted

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = tree_commit()
    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, Twisted {twisted.__version__}, {ngircd}, twistedchat at "
        f"commit {commit}; load average "
        f"at start {load}"
    )


def tls_targets_section(results: dict[int, dict[str, dict]]) -> str:
    """Issue 17's targets over TLS: CPU and p99 within 1.5x ngircd's, handshakes/s at least its."""
    lines = ["### Targets (TLS)", "", "| target | measured | verdict |", "|---|---|---|"]
    rows = [
        ("fixed load, 1,000 TLS clients: server CPU ≤ 1.5× ngircd", 1000,
         ("fixed", "server_cpu_percent"), 1.5, True),
        ("fixed load, 1,000 TLS clients: p99 latency ≤ 1.5× ngircd", 1000,
         ("fixed", "latency_p99_ms"), 1.5, True),
        ("TLS handshakes/s ≥ 1.0× ngircd (1,000-client run)", 1000, ("handshakes_per_s",), 1.0,
         False),
    ]  # fmt: skip
    for label, clients, path, bound, lower_is_better in rows:
        ours = results.get(clients, {}).get("twistedchat")
        ref = results.get(clients, {}).get(REFERENCE)
        if ours is None or ref is None or not ref.get(path) or ours.get(path) is None:
            lines.append(f"| {label} | not measured | — |")
            continue
        ratio = ours[path] / ref[path]
        met = ratio <= bound if lower_is_better else ratio >= bound
        fmt = next(f.fmt for f in TLS_FIGURES + FIGURES if f.path == path)
        lines.append(f"| {label} | {fmt(ours[path])} vs {fmt(ref[path])}: {ratio:.2f}× ngircd "
                     f"| {'met' if met else 'missed'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def targets_section(results: dict[int, dict[str, dict]]) -> str:
    """The issue's targets, each with the measured figure and by how much it is met or missed."""
    lines = ["### Targets", "", "| target | measured | verdict |", "|---|---|---|"]

    def ratio_row(label: str, clients: int, path: tuple[str, ...], lower_is_better: bool) -> None:
        ours = results.get(clients, {}).get("twistedchat")
        ref = results.get(clients, {}).get(REFERENCE)
        if ours is None or ref is None or not ref[path] or ours[path] is None:
            lines.append(f"| {label} | not measured | — |")
            return
        ratio = ours[path] / ref[path]
        met = ratio <= 1.0 if lower_is_better else ratio >= 1.0
        fmt = next(f.fmt for f in FIGURES if f.path == path)
        lines.append(f"| {label} | {fmt(ours[path])} vs {fmt(ref[path])}: {ratio:.2f}× ngircd "
                     f"| {'met' if met else 'missed'} |")  # fmt: skip

    ratio_row("fixed load, 1,000 clients: server CPU ≤ 1.0× ngircd", 1000,
              ("fixed", "server_cpu_percent"), True)  # fmt: skip
    ratio_row("fixed load, 1,000 clients: p99 latency ≤ ngircd", 1000,
              ("fixed", "latency_p99_ms"), True)  # fmt: skip
    for clients in (200, 1000):
        ratio_row(f"saturation, {clients:,} clients: deliveries/s ≥ 1.0× ngircd", clients,
                  ("saturation", "deliveries_per_s"), False)  # fmt: skip
    big = results.get(10000, {}).get("twistedchat")
    if big is None:
        lines.append(
            "| 10,000 clients registered in < 5 s, one channel, none lost | not measured | — |"
        )
        lines.append("| ≤ 10 KB RSS per idle registered client at 10,000 | not measured | — |")
    else:
        secs = (big[("register_seconds",)] or 0.0) + (big[("join_seconds",)] or 0.0)
        fixed_lost, saturation_lost = big[("fixed", "lost")], big[("saturation", "lost")]
        if fixed_lost is None or saturation_lost is None:
            lost_text, lost = "no message runs", 1.0
        else:
            lost = fixed_lost + saturation_lost
            lost_text = f"{lost:,.0f} lost"
        ok = secs < 5 and lost == 0
        lines.append(f"| 10,000 clients registered in < 5 s, one channel, none lost | {secs:.2f} s "
                     f"= {big[('register_seconds',)] or 0:.2f} s registering + "
                     f"{big[('join_seconds',)] or 0:.2f} s joining ({secs / 5:.1f}× the 5 s), "
                     f"{lost_text} | {'met' if ok else 'missed'} |")  # fmt: skip
        kb = (big[("rss_per_client_bytes",)] or 0.0) / 1024
        lines.append(f"| ≤ 10 KB RSS per idle registered client at 10,000 | {kb:.1f} KB | "
                     f"{'met' if kb <= 10 else 'missed'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def render(results: dict[int, dict[str, dict]], notes: dict[int, dict[str, list[str]]],
           args: argparse.Namespace, started: str, machine: str, elapsed: float) -> str:  # fmt: skip
    command = "python -m bench.run " + " ".join(args.argv) if args.argv else "make bench"
    if args.argv == ["--tls"]:
        command = "make bench-tls"
    took = f"; took {elapsed / 60:.1f} min" if elapsed else ""
    out = [
        f"Run {started} UTC on {machine}. Command: `{command}`{took}.",
        f"Medians of {args.reps} runs (10,000 clients: {args.reps_large}); fixed load "
        f"{args.senders} senders × {args.rate:g} msg/s for {args.fixed_seconds:g} s, saturation "
        f"{args.saturation_seconds:g} s with "
        + ", ".join(f"{saturation_window(c, args.senders):,}" for c in results)
        + " messages in flight (per size, in table order). Ratios in brackets are to ngircd's "
        "figure.",
        "",
    ]
    if args.tls:
        out[-1:] = [
            f"Over TLS: every server listens with TLS only (a fresh self-signed RSA-2048 "
            f"certificate), every generator client speaks TLS; each run starts with a storm of "
            f"{args.handshakes:,} handshake-only connections ({TLS_NOTE}).",
            "",
        ]
    if len(results) and any(REFERENCE in r for r in results.values()):
        out.append(tls_targets_section(results) if args.tls else targets_section(results))
    for clients, medians in results.items():
        out.append(size_table(clients, medians, notes.get(clients, {}), args.tls))
    return "\n".join(out)


def write_readme(path: Path, section: str, markers: tuple[str, str] = (RESULTS_START, RESULTS_END),
                 heading: str = "Results") -> None:  # fmt: skip
    """Replace the section of ``path`` between ``markers``, keeping the rest."""
    start, end = markers
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{start}\n{section}\n{end}{tail}")


def write_section(args: argparse.Namespace, section: str) -> None:
    """The plain or the TLS results section of the README, as the run was."""
    if args.tls:
        write_readme(args.readme, section, TLS_MARKERS, "Results over TLS")
    else:
        write_readme(args.readme, section)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="seconds-long run at tiny size")
    p.add_argument("--servers", help="comma-separated [twistedchat,ngircd,plain-twisted; with "
                   "--tls: twistedchat,ngircd,twistedchat-tls-gather,twistedchat-twisted-tls,"
                   "haproxy+twistedchat]")
    p.add_argument("--sizes", help="client counts, comma-separated [100,200,1000,10000; with "
                   "--tls: 200,1000]")  # fmt: skip
    p.add_argument("--tls", action="store_true", help="every connection over TLS")
    p.add_argument("--handshakes", type=int, default=500,
                   help="with --tls: handshake-only connections measured first in each run")
    p.add_argument("--reps", type=int, default=3, help="runs per server and size (median)")
    p.add_argument("--reps-large", type=int, default=3, help="runs at 10,000 clients and more")
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=5.0, help="fixed run: messages/s per sender")
    p.add_argument("--fixed-seconds", type=float, default=5.0)
    p.add_argument("--saturation-seconds", type=float, default=4.0)
    p.add_argument("--register-timeout", type=float, default=90.0)
    p.add_argument("--readme", type=Path, default=README, help="where to write the tables")
    p.add_argument("--json", type=Path, help="raw figures [bench/results.json, or "
                   "bench/results-tls.json with --tls]")  # fmt: skip
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--from-json", type=Path, help="only re-render the tables from a results file")
    args = p.parse_args(argv)
    if args.servers is None:
        args.servers = ("twistedchat,ngircd,twistedchat-tls-gather,twistedchat-twisted-tls,"
                        "haproxy+twistedchat" if args.tls
                        else "twistedchat,ngircd,plain-twisted")  # fmt: skip
    if args.sizes is None:
        args.sizes = "200,1000" if args.tls else "100,200,1000,10000"
    if args.json is None:
        args.json = BENCH_DIR / ("results-tls.json" if args.tls else "results.json")
    if args.quick:
        args.sizes, args.reps, args.reps_large = "5", 1, 1
        args.senders, args.rate, args.fixed_seconds, args.saturation_seconds = 2, 20.0, 1.0, 1.0
        args.register_timeout, args.handshakes = 20.0, 20
    args.argv = argv
    return args


def summarize(
    raw: dict[str, dict[str, list[dict]]], failures: dict[int, dict[str, list[str]]], timeout: float
) -> tuple[dict[int, dict[str, dict]], dict[int, dict[str, list[str]]]]:
    """Medians per size and server, and the notes to print under each table."""
    results: dict[int, dict[str, dict]] = {}
    notes: dict[int, dict[str, list[str]]] = {}
    for size, runs in raw.items():
        clients = int(size)
        results[clients] = {s: median_run(r, clients) for s, r in runs.items() if r}
        for server, server_runs in runs.items():
            server_notes = list(failures.get(clients, {}).get(server, []))
            incomplete = [r for r in server_runs if r["joined"] < clients]
            if incomplete:
                r = incomplete[0]
                got = (
                    f"all {clients:,} clients registered but only {r['joined']:,} joined"
                    if r["registered"] == clients
                    else f"only {r['registered']:,} of {clients:,} clients registered"
                )
                server_notes.append(
                    f"{got} within {timeout:.0f} s (server CPU "
                    f"{r['register_server_cpu_s'] + r['join_server_cpu_s']:.0f} s of it), so no "
                    "message runs at this size"
                )
            commits = sorted({r.get("twistedchat_commit", "") for r in server_runs} - {""})
            if server == "twistedchat" and len(commits) > 1:
                server_notes.append(f"the daemon changed between runs: {', '.join(commits)}")
            errors = sorted({e for r in server_runs for e in r["errors"]})
            server_notes.extend(f"generator saw: `{e.strip()}`" for e in errors[:5])
            notes.setdefault(clients, {})[server] = server_notes
    return results, notes


def rerender(path: Path, readme: Path) -> int:
    """Rewrite the README tables from a saved results file, without measuring anything."""
    saved = json.loads(path.read_text())
    args = parse_args(saved["args"])
    failures = {int(k): v for k, v in saved.get("failures", {}).items()}
    results, notes = summarize(saved["runs"], failures, args.register_timeout)
    section = render(results, notes, args, saved["started"], saved["machine"],
                     saved.get("elapsed", 0.0))  # fmt: skip
    print(section)
    write_section(argparse.Namespace(tls=args.tls, readme=readme), section)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the servers under test are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{__name__}: terminated"))
    if args.from_json:
        return rerender(args.from_json, args.readme)
    raise_nofile()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        print(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(SERVERS)}")
        return 2
    for name in [s for s in servers if s != REFERENCE and not SERVERS[s].available()]:
        print(f"{name} is not available here; benching without it")
        servers.remove(name)
    for name in [s for s in servers if args.tls and not SERVERS[s].speaks_tls]:
        print(f"{name} does not speak TLS; benching without it")
        servers.remove(name)
    if REFERENCE in servers and not ensure_ngircd():
        print("ngircd is not installed and could not be installed; benching without it")
        servers.remove(REFERENCE)
    if not servers:
        print("no server left to bench")
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    pin = (os.cpu_count() or 1) >= 2
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    machine = machine_description()
    t0 = time.monotonic()
    raw: dict[str, dict[str, list[dict]]] = {}
    failures: dict[int, dict[str, list[str]]] = {}
    for clients in sizes:
        reps = args.reps_large if clients >= 10000 else args.reps
        runs: dict[str, list[dict]] = {s: [] for s in servers}
        raw[str(clients)] = runs
        for rep in range(reps):
            for server in servers:
                if rep and runs[server] and runs[server][-1]["joined"] < clients:
                    continue  # it could not take this many: once is enough
                print(f"[{time.monotonic() - t0:6.0f} s] {server}, {clients} clients, "
                      f"run {rep + 1}/{reps}", flush=True)  # fmt: skip
                try:
                    run = measure(server, clients, args, pin)
                except (RuntimeError, subprocess.SubprocessError, OSError) as err:
                    failures.setdefault(clients, {}).setdefault(server, []).append(f"failed: {err}")
                    print(f"  failed: {err}", flush=True)
                    continue
                runs[server].append(run)
                print(f"  registered {run['registered']}/{clients} in {run['register_seconds']:.2f} "
                      f"s, joined {run['joined']} in {run['join_seconds']:.2f} s; fixed "
                      f"p99 {run['fixed']['latency_p99_ms']:.2f} ms, "
                      f"{run['fixed']['server_cpu_percent']:.0f} % CPU; saturation "
                      f"{run['saturation']['deliveries_per_s']:,.0f}/s"
                      + (f"; {run['handshakes_per_s']:,.0f} handshakes/s" if args.tls else "")
                      + f"; errors {run['errors']}", flush=True)  # fmt: skip
    elapsed = time.monotonic() - t0
    results, notes = summarize(raw, failures, args.register_timeout)
    section = render(results, notes, args, started, machine, elapsed)
    print(section)
    if not args.no_write:
        write_section(args, section)
        saved = {"started": started, "machine": machine, "args": args.argv, "elapsed": elapsed,
                 "failures": failures, "runs": raw}  # fmt: skip
        args.json.write_text(json.dumps(saved, indent=1))
        print(f"wrote {args.readme} and {args.json}")
    return 0 if results and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
