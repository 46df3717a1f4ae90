"""What executors report to the run, and how a run is asked to stop."""

from __future__ import annotations

import os
import traceback
from datetime import datetime, timezone
from typing import Any, Protocol

from .jobs import RenderJob


class Listener(Protocol):
    def on_worker(self, slot: int, device: str, info: dict[str, Any]) -> None: ...
    def on_start(self, slot: int, jobs: list[RenderJob]) -> None: ...
    def on_progress(self, slot: int, event: dict[str, Any]) -> None: ...
    def on_result(self, job: RenderJob, record: dict[str, Any]) -> None: ...
    def on_idle(self) -> None: ...  # the executor is waiting: a moment for deferred work


class StopSignal:
    """Level 0: run on. 1: finish or checkpoint what runs, start nothing new. 2: stop now."""

    def __init__(self) -> None:
        self.level = 0
        self.signal_number: int | None = None

    def request(self, signal_number: int | None = None) -> None:
        self.level += 1
        if self.signal_number is None:
            self.signal_number = signal_number


# An interrupted job's reason: the worker or task stopped it, and it renders next run.
INTERRUPTED_REASON = "interrupted; resumes next run"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timeout_reason(seconds: float, device: str, batch: int) -> str:
    """Why jobs stopped at their time limit failed, the same for a local and a Dask run."""
    shared = f" (a batch of {batch} jobs)" if batch > 1 else ""
    return f"timed out after {seconds:g} s on {device}{shared}"


def internal_error_reason(error: BaseException) -> str:
    """The one-line reason of a job that hit a bug (not a bad input): the exception's last line."""
    return f"internal error: {traceback.format_exception_only(type(error), error)[-1].strip()}"


def failure_record(job: RenderJob, reason: str) -> dict[str, Any]:
    """A failed result made by the parent (timeout, dead worker), not by a worker."""
    return _parent_record(job, "failed", reason)


def interrupted_record(job: RenderJob, reason: str) -> dict[str, Any]:
    """An interrupted result made by the parent: the stop killed the job's worker."""
    return _parent_record(job, "interrupted", reason)


def _parent_record(job: RenderJob, status: str, reason: str) -> dict[str, Any]:
    return {"job_id": job.job_id, "status": status, "error": reason, "worker_pid": None, "parent_pid": os.getpid()}
