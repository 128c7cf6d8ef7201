"""The real window on a real (virtual) X display: scripts/screenshot.py under xvfb-run.

This is the one test that uses Qt's xcb platform plugin, so it also checks that the X libraries the
README lists are enough for the window to start.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import checkout_env
from PyQt6.QtGui import QImage

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("xvfb-run") is None,
                    reason="xvfb-run is missing: make system-deps installs Debian's xvfb")
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshot_of_the_real_window_under_xvfb(tmp_path, theme):
    shot = tmp_path / "shot.png"
    home = tmp_path / "home"
    env = checkout_env(QT_API="pyqt6", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("QT_QPA_PLATFORM", None)  # the real xcb plugin, not offscreen
    env.pop("XDG_DATA_HOME", None)
    done = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable,
         str(REPO / "scripts" / "screenshot.py"), "--theme", theme, str(shot)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (980, 560)
    # a conversation was drawn: many distinct colours (nicks, links, highlight), not a blank frame
    colours = {image.pixel(x, y) for x in range(0, 980, 7) for y in range(0, 560, 5)}
    assert len(colours) > 20
    # the message area's background follows the theme
    background = image.pixelColor(600, 450).lightness()
    assert background < 80 if theme == "dark" else background > 200
    # the script's conversation logs stay in its own temp dir, never the user's
    assert not (home / ".local" / "share" / "twistedchat").exists()
    # the script's throwaway settings never touch /dev/null (QSettings replaces its file on save)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
