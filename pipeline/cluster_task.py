"""What runs inside a Dask worker: one engine per worker process, reused by every task.

Imports the engine (through worker.py), so only Dask workers import this module.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from .jobs import RenderJob, WorkerOptions
from .worker import build_engine, local_device, render_task

_engine = None
# A worker may run tasks on several threads; one device renders one task at a time.
_engine_lock = threading.Lock()


def render_on_cluster(
    jobs: list[RenderJob], options: WorkerOptions, inputs: dict[str, bytes],
    job_timeout: float | None = None,
) -> list[dict[str, Any]]:
    global _engine
    # Checkpoints live in the submitting machine's output folder, which a remote
    # worker cannot see; a cluster task that dies is rerun from the start.
    options = replace(options, checkpoint_every=0)
    with _engine_lock:
        if _engine is None:
            _engine = build_engine(local_device(), options)
        deadline = _Deadline(job_timeout * len(jobs)) if job_timeout else None
        records = render_task(_engine, jobs, options, inputs=inputs,
                              should_cancel=deadline.passed if deadline else None)
    if deadline is None or not deadline.expired:
        return records
    return [deadline.failure(record, len(jobs)) for record in records]


class _Deadline:
    """job_timeout inside a Dask task. Dask cannot stop a running task (a local
    run kills its worker process), so the engine is asked between iterations,
    through the same hook a local worker's cancel uses."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self.expired = False

    def passed(self) -> bool:
        self.expired = self.expired or time.monotonic() > self._end
        return self.expired

    def failure(self, record: dict[str, Any], batch: int) -> dict[str, Any]:
        """A job the deadline cancelled fails, as past job_timeout in a local run."""
        if record.get("status") != "interrupted":
            return record  # finished (or failed) before the deadline
        shared = f" (a batch of {batch} jobs)" if batch > 1 else ""
        reason = f"timed out after {self.seconds:g} s on {record.get('device', 'a Dask worker')}{shared}"
        return {**record, "status": "failed", "error": reason}
