"""Profile twistedchat under one bench load with py-spy, and print where its time goes.

``python -m bench.profile --clients 1000 --phase fixed`` starts the daemon (pinned like the
bench), drives it with ``bench.loadgen``, samples it with ``py-spy record`` during the chosen
phase and prints the hottest lines (own time) and functions (including callees). The raw
collapsed stacks are kept (``--out``) for a flame graph. Needs ``py-spy`` in the venv
(``pip install py-spy``) and permission to ptrace (root, or ptrace_scope 0). With ``--cluster``
the daemon is node a of a network on Redis (``bench.cluster``'s ``2-nodes`` setup, the clients
spread over both nodes).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.servers import SERVERS, pinned, running


def summarize(raw: Path, top: int) -> str:
    """The ``top`` frames by own samples and by inclusive samples, from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples (was the server busy during the window?)"
    out = [f"{total} samples", "", "own time:"]
    out += [f"{100 * n / total:5.1f} %  {frame}" for frame, n in own.most_common(top)]
    out += ["", "including callees:"]
    # Frames in (nearly) every sample are the reactor's own entry points: they say nothing.
    telling = [(f, n) for f, n in inclusive.most_common() if n < 0.95 * total][:top]
    out += [f"{100 * n / total:5.1f} %  {frame}" for frame, n in telling]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--phase", choices=["register", "fixed", "saturation"], default="fixed",
                   help="which load to sample (register = connecting, registering and joining)")  # fmt: skip
    p.add_argument("--seconds", type=int, default=5, help="sampling time")
    p.add_argument("--delay", type=float, help="seconds before sampling starts (default: guessed)")
    p.add_argument("--out", type=Path, default=Path("/tmp/twistedchat-profile.raw"))
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--idle", action="store_true", help="also sample time spent waiting in epoll")
    p.add_argument("--tls", action="store_true", help="every client over TLS (as bench.run --tls)")
    p.add_argument("--server", default="twistedchat", help="twistedchat-twisted-tls: Twisted's TLS")
    p.add_argument("--cluster", action="store_true",
                   help="sample node a of a 2-node network on Redis (bench.cluster's 2-nodes)")
    p.add_argument("--rate", type=float, default=5.0, help="fixed load: messages/s per sender")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy")
        return 2
    phase_seconds = args.seconds + 3
    load = {
        "register": ["--fixed-seconds", "0", "--saturation-seconds", "0"],
        "fixed": ["--fixed-seconds", str(phase_seconds), "--saturation-seconds", "0"],
        "saturation": ["--fixed-seconds", "0", "--saturation-seconds", str(phase_seconds)],
    }[args.phase]
    # Registering takes ~1 s per 1,000 clients at most on this machine's daemon; sample after it.
    delay = args.delay if args.delay is not None else (
        0.2 if args.phase == "register" else 1.0 + args.clients / 1000
    )  # fmt: skip
    if args.tls and args.delay is None:
        delay += 6 * args.clients / 1000  # TLS handshakes: ~250 a second here
    with contextlib.ExitStack() as stack:
        if args.cluster:
            from bench.cluster import started

            setup = stack.enter_context(started("2-nodes", "memory:"))
            port, pid = setup.ports[0], setup.pids[0]
            extra = ["--other-ports", str(setup.ports[1]), "--server-pid",
                     ",".join(str(p) for p in setup.pids)]  # fmt: skip
        else:
            srv = stack.enter_context(running(SERVERS[args.server], 0, tls=args.tls))
            port, pid, extra = srv.port, srv.pid, ["--server-pid", str(srv.pid)]
        command = [sys.executable, "-m", "bench.loadgen", "--port", str(port), *extra,
                   "--clients", str(args.clients), "--rate", str(args.rate),
                   "--connect-window", "64", *load, *(["--tls"] if args.tls else [])]  # fmt: skip
        generator = subprocess.Popen(pinned(command, 1), stdout=subprocess.PIPE, text=True)
        time.sleep(delay)
        spied = subprocess.run(
            [spy, "record", "--pid", str(pid), "--duration", str(args.seconds), "--rate", "250",
             "--format", "raw", "--output", str(args.out), "--nonblocking",
             *(["--idle"] if args.idle else [])],
            capture_output=True, text=True, timeout=args.seconds + 60,
        )  # fmt: skip
        out, _ = generator.communicate(timeout=600)
    if spied.returncode != 0:
        print(f"py-spy failed: {spied.stderr[-1500:]}")
        return 1
    result = json.loads(out)
    print(f"registered {result['registered']} in {result['register_seconds']:.2f} s, joined "
          f"{result['joined']} in {result['join_seconds']:.2f} s; fixed server CPU "
          f"{result['fixed']['server_cpu_percent']:.0f} %; saturation "
          f"{result['saturation']['deliveries_per_s']:,.0f} deliveries/s")  # fmt: skip
    print(summarize(args.out, args.top))
    print(f"\nraw stacks: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
