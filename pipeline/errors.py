"""The pipeline's error hierarchy. A user's mistake is a message, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PipelineError(Exception):
    """Base class: anything the pipeline refuses or cannot finish, with a readable reason."""


class OutputFolderError(PipelineError):
    """The output folder cannot hold a run: a file in its place or above it, a
    read-only disk, no permission. Caught by the CLI, which adds where the
    manifest names the folder."""

    def __init__(self, folder: Path, reason: str, *, readable: bool = False) -> None:
        self.folder = folder
        self.reason = reason
        self.readable = readable  # only writing is refused: what is there can still be read
        super().__init__(f"cannot use output folder {folder}: {reason}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, pinned to where it is.

    `str()` gives `gallery.yaml:12: jobs[2].styles[0]: no such file 'art/x.jpg'`;
    the line is left out when unknown, and `where` when the problem concerns the
    file as a whole (bad YAML syntax, a top level that is not a mapping).
    """

    file: str  # the manifest's file name, not its full path: short enough to scan
    line: int | None  # 1-based
    where: str  # dotted/indexed location such as "jobs[2].styles[0]"; "" for the whole file
    message: str

    def __str__(self) -> str:
        head = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{head}: {self.where}: {self.message}" if self.where else f"{head}: {self.message}"


class ManifestError(PipelineError):
    """A manifest cannot be used. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
