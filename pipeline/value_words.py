"""How messages quote what the user wrote, and name what they may have meant."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any


def unknown_name(kind: str, name: str, known: Sequence[str]) -> str:
    """`unknown setting 'style_wieght' (did you mean 'style_weight'?)`."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown {kind} '{name}' (did you mean '{close[0]}'?)"
    if len(known) <= 10:
        return f"unknown {kind} '{name}' (expected one of {', '.join(known)})"
    return f"unknown {kind} '{name}'"


def show(value: Any) -> str:
    """A value as the user wrote it, short: `'big'`, `-5`, `a list`, `nothing`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, (list, tuple)):
        return "a list" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
