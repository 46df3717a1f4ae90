"""What runs inside a Dask worker: one engine per worker process, reused by every task.

The submitting process imports this module too (joblib sends render_on_cluster
by reference), so the engine (through worker.py, and torch with it) is imported
only inside the task: the submitting process stays torch-free, as a local
run's parent does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from .events import timeout_reason
from .jobs import RenderJob, WorkerOptions

_engine = None
# A worker may run tasks on several threads; one device renders one task at a time.
_engine_lock = threading.Lock()


def render_on_cluster(
    jobs: list[RenderJob], options: WorkerOptions, inputs: dict[str, bytes],
    job_timeout: float | None = None, stop_event: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Render a task's jobs on this worker's engine. It stops early, between
    iterations, when `job_timeout` per job has passed (those jobs fail) or when
    the submitting run sets the Dask Event `stop_event` names, as (event name,
    scheduler address) (they are interrupted, and render again next run)."""
    global _engine
    # Checkpoints live in the submitting machine's output folder, which a remote
    # worker cannot see; a cluster task that dies is rerun from the start.
    options = replace(options, checkpoint_every=0)
    stop = _StopCheck(*stop_event) if stop_event else None
    if stop is not None and stop.requested():
        return [{"job_id": job.job_id, "status": "interrupted", "error": "interrupted; resumes next run"}
                for job in jobs]  # queued before the stop: no need to load the engine or the images
    from .worker import build_engine, local_device, render_task

    with _engine_lock:
        if _engine is None:
            _engine = build_engine(local_device(), options)
        deadline = _Deadline(job_timeout * len(jobs)) if job_timeout else None
        checks = ([deadline.passed] if deadline else []) + ([stop.requested] if stop else [])
        records = render_task(_engine, jobs, options, inputs=inputs,
                              should_cancel=(lambda: any(check() for check in checks)) if checks else None)
    if deadline is None or not deadline.expired:
        return records
    return [deadline.failure(record, len(jobs)) for record in records]


class _StopCheck:
    """Whether the submitting run asked its tasks to stop (a Dask Event).

    joblib's dask backend runs a task outside the worker's context, where
    get_worker() and get_client() find nothing, so the task reaches the
    scheduler with a client of its own, one per worker process. Reading the
    event is a round trip to the scheduler, so it is read at most once a
    second. If the scheduler cannot be reached from here (the submitting
    machine may know it by an address only it can use), the render goes on
    without the check: a broken stop channel must not fail or slow a job.
    """

    INTERVAL = 1.0

    def __init__(self, name: str, scheduler: str) -> None:
        self._name, self._scheduler = name, scheduler
        self._next_read = 0.0
        self._set = False

    def requested(self) -> bool:
        now = time.monotonic()
        if not self._set and now >= self._next_read:
            self._next_read = now + self.INTERVAL
            client = _client(self._scheduler)
            if client is not None:
                from distributed import Event

                try:
                    self._set = Event(self._name, client=client).is_set()
                except Exception:  # noqa: BLE001 (a failed read means "not asked")
                    self._set = False
        return self._set


CONNECT_TIMEOUT = "10s"
_clients: dict[str, Any] = {}  # scheduler address -> this process's client, or None: unreachable


def _client(scheduler: str):
    """This process's client of the scheduler; tried once, so an unreachable
    address costs one connection timeout per worker process, not one per check."""
    if scheduler not in _clients:
        from distributed import Client

        try:
            _clients[scheduler] = Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT)
        except Exception:  # noqa: BLE001 (OSError, TimeoutError, ...: no stop channel)
            _clients[scheduler] = None
    return _clients[scheduler]


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
        reason = timeout_reason(self.seconds, record.get("device", "a Dask worker"), batch)
        return {**record, "status": "failed", "error": reason}
