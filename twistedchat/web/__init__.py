"""The web client's static files (``static/``), served by the daemon's ``--web`` listener."""

from __future__ import annotations

from pathlib import Path

#: The folder of the page, its script modules and its style sheet.
STATIC_DIR = Path(__file__).resolve().parent / "static"
