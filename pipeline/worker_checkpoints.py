"""A worker's checkpoint files: its own, so a restarted worker resumes a job
instead of redoing it. Imported by worker.py only (inside a worker process).
"""

from __future__ import annotations

import os

from nst_engine.types import Checkpoint

from .jobs import RenderJob, WorkerOptions, checkpoint_path


def save_checkpoint(options: WorkerOptions, job: RenderJob, checkpoint: Checkpoint) -> None:
    """Write the checkpoint, or skip it: a checkpoint only saves time after a
    crash, so a full disk or a quota must not fail the render it belongs to."""
    if not checkpoint.is_finite():
        return
    path = checkpoint_path(options.output_dir, job.job_id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = checkpoint.to_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            # On disk before the rename: after a power cut the name must hold a
            # whole checkpoint (or the previous one), never an empty file that
            # costs the job its progress.
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # the last whole checkpoint, if any, stays


def load_checkpoint(options: WorkerOptions, job: RenderJob) -> Checkpoint | None:
    if not options.checkpoint_every:
        return None
    path = checkpoint_path(options.output_dir, job.job_id)
    if not path.is_file():
        return None
    try:
        checkpoint = Checkpoint.from_bytes(path.read_bytes())
        if checkpoint.is_finite():
            return checkpoint
    except Exception:  # noqa: BLE001 (damaged: handled below)
        pass
    path.unlink(missing_ok=True)  # damaged or blown up: start over rather than fail the job
    return None
