"""Which checkpoints in `.checkpoints/` can never be resumed, and when a run deletes them.

A checkpoint is kept while a later run of the manifest could resume from it:
its job is in the manifest and the job's output is not complete yet. Two kinds
fail that test, and nothing else would ever delete them:

- finished: the job's output is complete, as the plan counts it, so no plain
  run renders it again. A `--force` re-render that failed, timed out or was
  interrupted leaves one (its earlier image stays the job's output). Deleted
  by every run that holds the folder's lock, at its start and at its end.
- stale: no job of the manifest has its id. A setting, an input image or the
  engine changed, and the job id with it. Deleted only at the end of a full
  run (no --only, not interrupted), and `nst plan` notes them beforehand.
  Why not sooner: a user who reverts the setting gets the old id back, and a
  trial with --only or a run stopped at once (on seeing the wrong settings) must
  leave them that chance. Why not never: each holds the image's pixels in
  float32 (12 MiB at 1024 px), so a big sweep interrupted and then changed
  would leak gigabytes, and losing one costs only render time, never an output.

Only the lock's holder may delete: every checkpoint is written by a worker or
by the Recorder of the run that holds it (cluster.py ships a task's checkpoint
back to the Recorder), so one deleted here is not being written meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .jobs import CHECKPOINT_DIR, RenderJob
from .labels import count, data_size
from .outputs import output_is_complete


@dataclass(frozen=True)
class Removed:
    count: int = 0
    size: int = 0  # bytes

    def __bool__(self) -> bool:
        return self.count > 0


def checkpoint_files(output_dir: Path | str) -> dict[str, Path]:
    """Job id -> checkpoint file. Only whole ones: a worker's `.<name>.tmp` is
    the temp-file sweep's (lock.remove_dead_runs_temp_files)."""
    try:
        entries = list((Path(output_dir) / CHECKPOINT_DIR).iterdir())
    except OSError:  # none yet (the usual case), or unreadable: nothing to tidy
        return {}
    return {path.stem: path for path in entries if path.suffix == ".pt" and path.is_file()}


def remove_finished(output_dir: Path, jobs: Iterable[RenderJob]) -> Removed:
    """Delete the checkpoints of those of `jobs` whose output is complete.

    Only the jobs that have a checkpoint are looked up on disk, so a finished
    gallery of thousands of jobs costs no image reads."""
    files = checkpoint_files(output_dir)
    finished = [files[job.job_id] for job in jobs
                if job.job_id in files and output_is_complete(output_dir, job)]
    return _remove(finished)


def stale_checkpoints(output_dir: Path, jobs: Iterable[RenderJob]) -> list[Path]:
    """Checkpoint files whose job id belongs to none of `jobs` (the whole manifest's)."""
    ids = {job.job_id for job in jobs}
    return [path for job_id, path in sorted(checkpoint_files(output_dir).items()) if job_id not in ids]


def remove_stale(output_dir: Path, jobs: Iterable[RenderJob]) -> Removed:
    """Call only at the end of a full run: see the module's docstring."""
    return _remove(stale_checkpoints(output_dir, jobs))


def stale_note(output_dir: Path, jobs: Iterable[RenderJob]) -> str | None:
    """`nst plan`'s line on the stale checkpoints, while a revert can still save them."""
    stale = stale_checkpoints(output_dir, jobs)
    if not stale:
        return None
    one = len(stale) == 1
    return (f"{count(len(stale), 'checkpoint')} of jobs no longer in the manifest "
            f"({data_size(sum(_size(path) for path in stale))}) in {Path(output_dir) / CHECKPOINT_DIR} "
            f"(a setting or an image changed since); the next full run (no --only, not interrupted) "
            f"deletes {'it' if one else 'them'}")


def describe_removed(removed: Removed, what: str) -> str:
    """'deleted 2 checkpoints (310 KiB) of <what>' for the run's log."""
    return f"deleted {count(removed.count, 'checkpoint')} ({data_size(removed.size)}) of {what}"


def _remove(paths: Iterable[Path]) -> Removed:
    count = size = 0
    for path in paths:
        bytes_ = _size(path)
        try:
            path.unlink()
        except OSError:  # gone already, or it only takes space: the run does not need it gone
            continue
        count, size = count + 1, size + bytes_
    return Removed(count, size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
