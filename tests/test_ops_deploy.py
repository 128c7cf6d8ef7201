"""The deployment kit in deploy/: the systemd unit, the example config and the container recipe.

The container image itself cannot be built here (no registry access for its base image); these
tests check what can be checked offline: the unit passes ``systemd-analyze verify``, and the exact
commands the unit and the image run are accepted by ``twistd chat --configtest``.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import checkout_env, twistd_command

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
INSTALLED_TWISTD = "/opt/twistedchat/bin/twistd"
INSTALLED_CONFIG = "/etc/twistedchat/chat.toml"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "twistedchat.service")
    return parser


def configtest(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a command line from the kit against this checkout and the example config."""
    words = command.split()
    assert words[0] in (INSTALLED_TWISTD, "twistd"), command
    words = [*twistd_command(), *[str(DEPLOY / "chat.toml") if w == INSTALLED_CONFIG else w
                                  for w in words[1:]]]
    if "--configtest" not in words:
        words.append("--configtest")
    return subprocess.run(words, cwd=tmp_path, env=checkout_env(), capture_output=True,
                          text=True, timeout=60)


def test_unit_runs_unprivileged_reloads_with_hup_and_raises_the_file_limit():
    service = unit()["Service"]
    assert service["User"] not in ("", "root") and service["Group"] not in ("", "root")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(service["LimitNOFILE"]) >= 10_000
    assert service["KillSignal"] == "SIGTERM"


@pytest.mark.parametrize("key", ["ExecStartPre", "ExecStart"])
def test_unit_commands_accept_the_example_config(tmp_path, key):
    result = configtest(unit()["Service"][key], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK" in result.stdout


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (make system-deps installs systemd)")
    text = (DEPLOY / "twistedchat.service").read_text()
    copy = tmp_path / "twistedchat.service"
    copy.write_text(text.replace(INSTALLED_TWISTD, twistd_command()[0]))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60)
    # verify exits 0 even for unknown keys or bad values: it names the file on every complaint
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if str(copy) in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_container_command_accepts_the_example_config(tmp_path):
    lines = (DEPLOY / "Containerfile").read_text().splitlines()
    entrypoint = json.loads(next(line for line in lines if line.startswith("ENTRYPOINT "))[11:])
    cmd = json.loads(next(line for line in lines if line.startswith("CMD "))[4:])
    result = configtest(" ".join([*entrypoint, *cmd]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
