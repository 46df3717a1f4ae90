"""Recursive (`**`) globs that enter each real folder once.

`glob.glob` follows folder symlinks with no memory of where it has been, so one
link to a parent folder (`up -> ..`) sent it round the same folders until the
path grew too long: `nst plan` hung for minutes and grew past 2 GB. This walk
follows links too, since a photo library is often a link to another disk, but
enters each real folder (device and inode) once for each `**` of the pattern,
and gives up past MAX_FOLDERS (`/**/*.jpg` would crawl the whole disk) with a
line that says so.

Otherwise it matches as glob.glob does: `**` is any number of folders, zero
included; `*`, `?` and `[...]` match within one name; a name starting with a
dot matches only a pattern that starts with one.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

MAX_FOLDERS = 50_000
_GLOB_CHARS = frozenset("*?[")


class GlobTooWide(Exception):
    """The walk went past MAX_FOLDERS."""


def is_recursive(pattern: str) -> bool:
    return "**" in Path(pattern).parts


def walk_glob(pattern: str, base: Path) -> list[Path]:
    """Every path matching `pattern` (relative to `base`, or absolute), unsorted."""
    parts = list(Path(pattern).parts)
    if Path(pattern).is_absolute():  # parts[0] is the root, "/"
        return list(_Walk().match(Path(parts[0]), parts[1:]))
    return list(_Walk().match(base, parts))


class _Walk:
    def __init__(self) -> None:
        self.seen: set[tuple[int, int, int]] = set()  # (which `**`, device, inode)
        self.listed: dict[Path, list[str]] = {}  # each folder is read once, whatever the pattern asks of it

    def names(self, folder: Path) -> list[str]:
        if folder not in self.listed:
            self.listed[folder] = _names(folder)
        return self.listed[folder]

    def subfolders(self, folder: Path) -> list[Path]:
        # Hidden folders are left out, as glob.glob's `**` leaves them out.
        return [folder / name for name in self.names(folder) if not name.startswith(".") and (folder / name).is_dir()]

    def enter(self, folder: Path, which: int) -> bool:
        """False if `folder` (its real self) was walked already for the `**`
        that has `which` parts after it."""
        try:
            info = folder.stat()
        except OSError:
            return False
        key = (which, info.st_dev, info.st_ino)
        if key in self.seen:
            return False
        if len(self.seen) >= MAX_FOLDERS:
            raise GlobTooWide(f"walked over {MAX_FOLDERS:,} folders")
        self.seen.add(key)
        return True

    def match(self, folder: Path, parts: list[str]):
        if not parts:
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            # Reached by name, not by this walk: a link back to it must not enter it again.
            self.enter(folder, len(rest))
            if not rest:  # the folder and everything in it
                yield folder
                yield from self._below(folder)
                return
            yield from self.match(folder, rest)  # no folder at all
            for sub in self.subfolders(folder):
                if self.enter(sub, len(rest)):
                    yield from self.match(sub, parts)
            return
        if not _GLOB_CHARS & set(head):  # a plain name: no need to list the folder
            candidate = folder / head
            if not rest:
                if os.path.lexists(candidate):
                    yield candidate
            elif candidate.is_dir():
                yield from self.match(candidate, rest)
            return
        for name in self.names(folder):
            if (name.startswith(".") and not head.startswith(".")) or not fnmatch.fnmatchcase(name, head):
                continue
            if not rest:
                yield folder / name
            elif (folder / name).is_dir():
                yield from self.match(folder / name, rest)

    def _below(self, folder: Path):
        for name in self.names(folder):
            if not name.startswith("."):
                yield folder / name
                if (folder / name).is_dir() and self.enter(folder / name, 0):
                    yield from self._below(folder / name)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:  # unreadable or gone: glob.glob passes over it too
        return []
