"""What to call an image in the plan table and on the contact sheet.

A content's label is its file's stem, so `cat.jpg` and `cat.png` (or
`a/cat.jpg` and `b/cat.jpg` from a glob) are both "cat": two rows of the sheet
and of `nst plan` that nobody can tell apart. Where labels collide, those images
are shown by as much of their path as tells them apart instead. Only what is
shown changes: labels, output names and job ids stay as they are, so adding
`cat.png` next to `cat.jpg` renames and renders nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import PurePath


def distinct_names(labels: Mapping[str, str]) -> dict[str, str]:
    """image path -> its name for display: its label, or where another path has
    the same label, the shortest tail of its path that no other one shares."""
    paths_by_label: dict[str, list[str]] = defaultdict(list)
    for path, label in labels.items():
        paths_by_label[label].append(path)
    names = {}
    for label, paths in paths_by_label.items():
        for path in paths:
            names[path] = label if len(paths) == 1 else _distinct_tail(path, paths)
    return names


def _distinct_tail(path: str, paths: list[str]) -> str:
    parts = PurePath(path).parts
    others = [PurePath(other).parts for other in paths if other != path]
    for length in range(1, len(parts) + 1):
        if all(other[-length:] != parts[-length:] for other in others):
            return "/".join(parts[-length:]).lstrip("/")
    return path
