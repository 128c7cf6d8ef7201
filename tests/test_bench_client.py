"""The client burst bench at tiny size, so it doesn't rot: it runs, shows every line, and caps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helpers import checkout_env

REPO = Path(__file__).resolve().parent.parent


def test_client_burst_bench_runs_and_writes_its_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Bench\n\nhand-written text stays\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.client_burst", "--quick", "--readme", str(readme)],
        cwd=REPO, capture_output=True, text=True, timeout=170,
        env=checkout_env(QT_QPA_PLATFORM="offscreen", QT_API="pyqt6"),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = readme.read_text()
    assert "hand-written text stays" in text
    assert "<!-- client-burst:begin -->" in text and "<!-- client-burst:end -->" in text
    # every one of the 200 messages reached the view (plus the two join lines), both ways
    rows = re.findall(r"^\| 200 \| (batched|per-line) \|.*\| (\d+) \|$", text, re.M)
    assert sorted(rows) == [("batched", "202"), ("per-line", "202")]
    # past its cap, a conversation keeps exactly the cap, in the model and in the view
    assert "the view holds 2,000 lines and the model 2,000" in text
