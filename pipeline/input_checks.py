"""Which jobs of a plan will fail on their input images, told before the night.

A render already turns a bad input into one failed job with its reason; the
plan's job is to show that reason while the user can still fix the file. Only
headers are read, so this is quick on any gallery, and it runs the engine's own
checks (nst_engine.image_files), so the plan's reason is the failed job's
reason, with the file named by its path from the manifest rather than its
name alone. What only decoding finds (a truncated file) is still found at
render time.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nst_engine.errors import ImageError
from nst_engine.image_files import check_render_sizes, read_header

from .jobs import RenderJob

Header = tuple[int, int] | ImageError  # the stored size, or why the file cannot be used
INIT_LABEL = "init image "  # the worker names a bad init image the same way


@dataclass(frozen=True)
class InputProblem:
    reason: str  # one line that names the file
    jobs: int  # how many of the jobs asked about it fails


def read_headers(paths: Iterable[str], base: Path | None = None) -> dict[str, Header]:
    """Each file's stored size, or its ImageError; each file is opened once.
    Files under `base` are named relative to it, others by their full path."""
    return {path: _header(path, shown_name(path, base)) for path in set(paths)}


def input_problems(jobs: Iterable[RenderJob], base: Path | None = None) -> list[InputProblem]:
    """The reasons `jobs` would fail on their inputs, most jobs first."""
    jobs = list(jobs)
    # Each file named and opened once: a sweep repeats the same few files thousands of times.
    paths = {path for job in jobs for path in (job.content, *job.styles)}
    shown = {path: shown_name(path, base) for path in paths}
    headers = {path: _header(path, name) for path, name in shown.items()}
    inits = {job.settings.init_file() for job in jobs} - {None}
    # An init image is named as one, or a user looks for the fault in the photo.
    init_problems = {path: _header(path, INIT_LABEL + shown_name(path, base)) for path in inits}
    reasons = Counter()
    for job in jobs:
        reason = _job_problem(job, headers, shown, init_problems)
        if reason:
            reasons[reason] += 1
    return [InputProblem(reason, count) for reason, count in reasons.most_common()]


def _job_problem(job: RenderJob, headers: dict[str, Header], shown: dict[str, str],
                 inits: dict[str, Header]) -> str | None:
    for header in (*(headers[path] for path in (job.content, *job.styles)), inits.get(job.settings.init_file())):
        if isinstance(header, ImageError):
            return str(header)
    try:
        check_render_sizes(job.settings, (shown[job.content], headers[job.content]),
                           [(shown[style], headers[style]) for style in job.styles])
    except ImageError as problem:
        return str(problem)
    return None


def _header(path: str, shown: str) -> Header:
    try:
        return read_header(path, name=shown)
    except ImageError as problem:
        return problem


def shown_name(path: str, base: Path | None) -> str:
    """A file as messages name it: by its path from the manifest's folder
    (`base`) when under it, else by its full path; by its name alone when the
    folder is not known."""
    if base is None:
        return Path(path).name
    if Path(path).is_relative_to(base):
        return os.path.relpath(path, base)
    return path
