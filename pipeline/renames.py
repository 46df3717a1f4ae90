"""Outputs whose name changed but whose render did not: moved, not rendered again.

An output's name comes from the manifest's `name:` template and the labels; its
job id comes from the inputs and the settings. Editing the template, or a
release that names files better, changes names and not ids, and an overnight
re-render of a whole gallery for that would waste the night. Every output's
name ends in its job id, so an image rendered under an older name is found by
it, checked (the PNG's own id chunk and a sidecar naming the job, as for any
done job) and moved, with its sidecar, to the name the manifest now gives.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .job_state import sidecar_job_fields
from .jobs import CHECKPOINT_DIR, JOB_ID_LENGTH, RenderJob
from .lock import LOCK_NAME
from .outputs import (
    RESULTS_FILE,
    SUMMARY_FILE,
    THUMBS_DIR,
    sidecar_of_complete_png,
    write_json_atomic,
)

log = logging.getLogger("nst")

_ID_AT_END = re.compile(rf"-([0-9a-f]{{{JOB_ID_LENGTH}}})$")
# A folder holding one of these is a gallery of its own: another manifest's
# output folder placed inside this one (`output: gal` beside `output: gal/a`).
_GALLERY_MARKS = (RESULTS_FILE, SUMMARY_FILE, LOCK_NAME)


def gallery_pngs(output_dir: Path) -> list[Path]:
    """The PNGs of the gallery in `output_dir`, in its subfolders too (a `name:`
    template may make them), sorted. Left out: thumbnails, checkpoints and any
    subfolder that is another gallery, whose images are that manifest's to
    keep: moving or counting them here would take them from its sheet."""
    found = []
    for folder, subfolders, files in os.walk(output_dir):  # does not follow folder symlinks
        here = Path(folder)
        if here == output_dir:
            subfolders[:] = [name for name in subfolders if name not in (THUMBS_DIR, CHECKPOINT_DIR)]
        elif any(mark in files for mark in _GALLERY_MARKS):
            subfolders[:] = []
            continue
        found += [here / name for name in files if name.endswith(".png")]
    return sorted(found)


def find_renamed(output_dir: Path, jobs: Iterable[RenderJob]) -> dict[str, Path]:
    """job id -> a complete output of one of `jobs` under a name other than its own."""
    wanted = {job.job_id: job for job in jobs}
    found: dict[str, Path] = {}
    if not wanted or not output_dir.is_dir():
        return found
    for path in gallery_pngs(output_dir):
        match = _ID_AT_END.search(path.stem)
        job = wanted.get(match.group(1)) if match else None
        if job is None or job.job_id in found or path == output_dir / job.output_name:
            continue
        if sidecar_of_complete_png(path, job.job_id) is not None:
            found[job.job_id] = path
    return found


def adopt_renamed(output_dir: Path, jobs: Iterable[RenderJob], found: Mapping[str, Path] | None = None,
                  *, manifest: str | None = None) -> dict[str, str]:
    """Move each complete output of `jobs` found under an older name (`found`,
    else looked for) to its current name. Returns job id -> the old name,
    relative to `output_dir`, of each one moved; one that cannot be moved is
    left as it was, and renders. Each moved sidecar names the job's inputs as
    `jobs` (and `manifest`, the run's manifest, when given) name them now."""
    by_id = {job.job_id: job for job in jobs}
    if found is None:
        found = find_renamed(output_dir, by_id.values())
    moved: dict[str, str] = {}
    for job_id, old_png in found.items():
        job = by_id[job_id]
        old_name = old_png.relative_to(output_dir).as_posix()
        try:
            current = {**sidecar_job_fields(job), "renamed_from": old_name}
            if manifest is not None:
                current["manifest"] = manifest
            _move(old_png, output_dir / job.output_name, current)
        except OSError as error:
            log.warning("could not rename %s to %s (%s): it renders again", old_name, job.output_name,
                        error.strerror or error)
            continue
        moved[job_id] = old_name
        _remove_emptied_folders(old_png.parent, output_dir)
        log.info("renamed %s -> %s: its name changed, its render did not", old_name, job.output_name)
    return moved


def _move(old_png: Path, new_png: Path, current: dict) -> None:
    # The new sidecar is written first and the old one removed last, so a crash
    # at any point leaves one whole (image, sidecar) pair, old or new, for the
    # next run to find. The names change; how the image was made (stats,
    # device, versions) stays as the render wrote it.
    sidecar = json.loads(old_png.with_suffix(".json").read_text(encoding="utf-8"))
    sidecar.update(current)
    new_png.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(new_png.with_suffix(".json"), sidecar)
    os.replace(old_png, new_png)
    old_png.with_suffix(".json").unlink(missing_ok=True)


def _remove_emptied_folders(folder: Path, output_dir: Path) -> None:
    """Remove `folder` and its parents up to `output_dir` while they are empty:
    after `name: "{style}/{content}"` became `"{content}/{style}"`, a folder per
    old style would otherwise sit empty in the gallery for good. rmdir only ever
    removes an empty folder, so nothing the user keeps there can go."""
    while folder != output_dir and folder.is_relative_to(output_dir):
        try:
            folder.rmdir()
        except OSError:  # not empty (or not ours to remove): leave it, and its parents
            return
        folder = folder.parent


def unclaimed_outputs(output_dir: Path, jobs: Iterable[RenderJob]) -> list[Path]:
    """Renders in the folder that belong to no job of `jobs`: a PNG named as
    outputs are (ending in a job id) whose id no job has. They are what an
    evolving manifest leaves behind (a swept value changed, a photo removed).
    Nothing deletes them; `nst plan` counts them, so the folder's growth is
    no surprise. By name only: reading every PNG would cost a big gallery's
    plan seconds, and a file named so was made by a run."""
    ids = {job.job_id for job in jobs}
    if not output_dir.is_dir():
        return []
    found = []
    for path in gallery_pngs(output_dir):
        match = _ID_AT_END.search(path.stem)
        if match and match.group(1) not in ids:
            found.append(path)
    return found
