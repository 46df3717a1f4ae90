"""What to call an image in the plan table and on the contact sheet.

A content's label is its file's stem, so `cat.jpg` and `cat.png` (or
`a/cat.jpg` and `b/cat.jpg` from a glob) are both "cat": two rows of the sheet
and of `nst plan` that nobody can tell apart. Where labels collide, those images
are shown by as much of their path as tells them apart instead. Only what is
shown changes: labels, output names and job ids stay as they are, so adding
`cat.png` next to `cat.jpg` renames and renders nothing.

Also here, as names the tool shows: how `--only` matches a job by any of
them (`select`), and how a variant's name splits into its settings
(`setting_parts`), for the plan's variant column and the sheet's chips; and
how jobs that share a cell (or a plan row's names) are told apart (`tell_apart`).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path, PurePath

from nst_engine.settings import RenderSettings

from .jobs import RenderJob, format_value


class ShownNames:
    """What the plan table and the sheet call each job's content and style."""

    def __init__(self, jobs: Iterable[RenderJob]) -> None:
        jobs = list(jobs)
        self.contents = distinct_names({job.content: job.content_label for job in jobs})
        # A blend's label names the whole mix; only single styles can collide.
        self._styles = distinct_names({job.styles[0]: job.style_label for job in jobs if len(job.styles) == 1})

    def style(self, job: RenderJob) -> str:
        return self._styles[job.styles[0]] if len(job.styles) == 1 else job.style_label


def distinct_names(labels: Mapping[str, str]) -> dict[str, str]:
    """image path -> its name for display: its label, or where another path has
    the same label, the shortest tail of its path that no other one shares."""
    paths_by_label: dict[str, list[str]] = defaultdict(list)
    for path, label in labels.items():
        paths_by_label[label].append(path)
    names = {}
    for label, paths in paths_by_label.items():
        if len(paths) == 1:
            names[paths[0]] = label
        else:
            names.update(_distinct_tails(paths))
    return names


def _distinct_tails(paths: list[str]) -> dict[str, str]:
    # Counted per tail length, so a thousand folders each holding a photo.jpg
    # cost a few passes on every sheet rewrite, not a million comparisons.
    parts = {path: PurePath(path).parts for path in paths}
    tails: dict[str, str] = {}
    for length in range(1, max(map(len, parts.values())) + 1):
        left = [path for path in paths if path not in tails]
        if not left:
            break
        counts = Counter(parts[path][-length:] for path in paths)
        for path in left:
            if counts[parts[path][-length:]] == 1:
                tails[path] = "/".join(parts[path][-length:]).lstrip("/")
    return {path: tails.get(path, path) for path in paths}


def count(number: int, noun: str) -> str:
    """`1 job`, `2 jobs`: for messages, where "1 jobs" reads as a slip."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def data_size(size: int) -> str:
    """`512 bytes`, `20 KiB`, `3.5 MiB`, `1.2 GiB`: "0.0 MiB" said nothing of a 20 KB checkpoint."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 2**10:.0f} KiB" if size >= 2**10 else count(size, "byte")


def select(jobs: Sequence[RenderJob], only: str | None) -> list[RenderJob]:
    """--only GLOB matches any name the tool shows a job by: its output name,
    with or without `.png` and its folder (the log's name), its job id (the
    plan's last column), its content or style label, an image's file name, or
    the part of its path the plan and the sheet show where names collide
    (`day2/IMG_0001.jpg` beside `day1/IMG_0001.jpg`), or what the plan's
    variant column shows: its sweep point (`style_weight=5` alone, or with the
    other swept settings) and the tag that tells it from other entries'
    jobs of its cell (`size=48,init=content`, or `init=content` alone)."""
    if not only:
        return list(jobs)
    shown, tags = ShownNames(jobs), cell_tags(jobs)
    names = {job.job_id: _names(job, shown, tags.get(job.job_id, "")) for job in jobs}
    # A name shown as written is that name, glob characters and all: "photo [1]"
    # picks that photo, and "what?" only the photo named so, not what1.
    literal = [job for job in jobs if only in names[job.job_id]]
    return literal or [job for job in jobs if any(fnmatch.fnmatch(text, only) for text in names[job.job_id])]


def close_selection(jobs: Sequence[RenderJob], only: str) -> str | None:
    """A pattern one typo away from `only` that picks jobs: `chelsae*` -> `chelsea*`."""
    core = only.strip("*")
    if not core or set("*?[") & set(core):
        return None
    shown, tags = ShownNames(jobs), cell_tags(jobs)
    names = {name for job in jobs for name in _names(job, shown, tags.get(job.job_id, ""))}
    for close in difflib.get_close_matches(core, names, n=3, cutoff=0.75):
        offered = only.replace(core, close)
        if select(jobs, offered):
            return offered
    return None


def _names(job: RenderJob, shown: ShownNames, tag: str) -> tuple[str, ...]:
    output = Path(job.output_name)
    return (job.output_name, str(output.with_suffix("")), output.stem, job.job_id,
            job.content_label, job.style_label, Path(job.content).name, *(Path(style).name for style in job.styles),
            shown.contents[job.content], shown.style(job),
            *(name for label in (job.variant, tag) if label for name in (label, *setting_parts(label))))


def setting_parts(label: str) -> list[str]:
    """A variant's label split into its settings, one chip line each.

    Values hold commas of their own (`scales=256,512`, layer weights
    `relu1_1:0.5,relu3_1:2`), so a comma ends a setting only where the next
    setting's name follows it; split at every comma, "…relu3_1:2,init=noise"
    read as if relu3_1 and init were one setting.
    """
    if not label:
        return []
    return re.split(rf",(?=(?:{'|'.join(map(re.escape, _setting_names()))})=)", label)


@lru_cache(maxsize=1)
def _setting_names() -> tuple[str, ...]:
    return tuple(sorted(RenderSettings().to_dict(), key=len, reverse=True))


def differing_settings(jobs: Sequence[RenderJob]) -> list[str]:
    """The settings whose values are not the same in every one of `jobs`."""
    return _differing([job.settings.to_dict() for job in jobs])


def _differing(settings: Sequence[Mapping]) -> list[str]:
    return [key for key in settings[0] if len({json.dumps(values[key], sort_keys=True) for values in settings}) > 1]


def cell_tags(jobs: Sequence[RenderJob]) -> dict[str, str]:
    """Job id -> what tells it from the other jobs of its photo, style and
    variant (entries that differ only in their own settings), as the sheet tags
    the cards stacked in one cell; over every job given, so that --only, which
    picks from them, changes no tag."""
    cells: dict[tuple, list[RenderJob]] = defaultdict(list)
    for job in jobs:
        cells[job.content, job.styles, job.style_label, job.variant].append(job)
    return {job.job_id: tag for cell in cells.values() if len(cell) > 1
            for job, tag in zip(cell, tell_apart(cell), strict=True)}


def tell_apart(jobs: Sequence[RenderJob]) -> list[str]:
    """A tag for each of several jobs that share one cell (same photo, style and
    variant): the settings in which they differ ("init=night_cafe", "size=72"),
    so the stacked cards say how they differ; their manifest entries if none do."""
    settings = [job.settings.to_dict() for job in jobs]
    differing = _differing(settings)
    if not differing:
        return [job.source or job.job_id[:6] for job in jobs]
    return [",".join(f"{key}={_short(values[key])}" for key in differing) for values in settings]


def _short(value) -> str:
    """A setting as a tag shows it: a file (an init image, a weights file) by its name."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return PurePath(value).stem
    return format_value(value)
