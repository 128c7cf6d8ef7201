"""Typing help for PyQt6, whose stubs mark nearly every object Qt hands back as possibly None."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def present(value: T | None) -> T:
    """``value``, which Qt always gives at this point (a widget's own document, scroll bar, ...)."""
    if value is None:
        raise RuntimeError("Qt gave None for an object that always exists here")
    return value
