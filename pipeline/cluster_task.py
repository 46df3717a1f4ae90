"""What runs inside a Dask worker: one engine per worker process, reused by every task.

The submitting process imports this module too (joblib sends render_on_cluster
by reference), so the engine (through worker.py, and torch with it) is imported
only inside the task: the submitting process stays torch-free, as a local
run's parent does.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from .events import INTERRUPTED_REASON, internal_error_reason, timeout_reason
from .jobs import RenderJob, WorkerOptions, checkpoint_path, threads_per_worker

_engine = None
# A worker may run tasks on several threads; one device renders one task at a time.
_engine_lock = threading.Lock()


@dataclass(frozen=True)
class TaskChannel:
    """How a run's tasks and the submitting process talk through the scheduler.

    stop_event: a Dask Event the run sets to ask its tasks to stop.
    start_topic: a scheduler event log where each task notes which jobs it
    started, and on which worker. When Dask gives up on a task because every
    worker that ran it died (KilledWorker), joblib does not say which job that
    was; this log does (cluster_failures.jobs_that_killed).
    """

    run_id: str

    @property
    def stop_event(self) -> str:
        return f"nst-stop-{self.run_id}"

    @property
    def start_topic(self) -> str:
        return f"nst-started-{self.run_id}"

    @property
    def progress_topic(self) -> str:
        """Each task's iterations, for the run's display (cluster_progress)."""
        return f"nst-progress-{self.run_id}"


# Progress notes are round trips to the scheduler: one a second per task is
# plenty for a display, and light for a scheduler with many GPUs' tasks.
PROGRESS_INTERVAL = 1.0
# Marks the record of a job whose task saw the stop before it began: the run
# leaves it pending, as a local run leaves the jobs it never started.
NOT_STARTED = "not_started"


def render_on_cluster(
    jobs: list[RenderJob], options: WorkerOptions, inputs: dict[str, bytes],
    job_timeout: float | None = None, channel: TaskChannel | None = None,
    checkpoints: dict[str, bytes] | None = None,
) -> list[dict[str, Any]]:
    """Render a task's jobs on this worker's engine. It stops early, between
    iterations, when `job_timeout` per job has passed (those jobs fail) or when
    the submitting run sets the channel's stop event (they are interrupted).
    Either way a job's pixels so far come back as its record's "checkpoint"
    (see _with_checkpoint), and `checkpoints` (job id -> bytes) hands them to
    the next run's task, which resumes from there. An exception fails this
    task's jobs only: raised to joblib, it would end the whole run."""
    stop = _StopCheck(channel.stop_event) if channel else None
    if stop is not None and stop.requested():  # queued before the stop: no need to load the engine or the images
        return [{"job_id": job.job_id, "status": "interrupted", "error": INTERRUPTED_REASON, NOT_STARTED: True}
                for job in jobs]
    if channel is not None:
        _note_start(channel, jobs)
    try:
        return _render(jobs, options, inputs, job_timeout, stop, checkpoints or {},
                       _progress_notes(channel) if channel else None)
    except Exception as error:  # a bug or a broken device, not a bad input
        return [{"job_id": job.job_id, "status": "failed", "error": internal_error_reason(error)} for job in jobs]


def _render(jobs, options, inputs, job_timeout, stop, checkpoints, on_progress) -> list[dict[str, Any]]:
    global _engine
    from .worker import build_engine, local_device, render_task, share_cores

    with _engine_lock:
        device = local_device()
        # Asked at every task: workers join and leave a host during a run, and a
        # worker that started alone kept all its cores when a second one joined
        # (3 threads on 2 cores, each render slower). The sidecar says what it had.
        threads = torch_threads_here(device)
        if _engine is None:
            # No checkpoints every N iterations: they would stay on this
            # worker, where a crash takes them too. Only the one a stop or a
            # timeout makes goes back to the submitting machine.
            _engine = build_engine(device, replace(options, checkpoint_every=0, threads=threads))
        elif device == "cpu" and threads:
            share_cores(threads)
        deadline = _Deadline(job_timeout * len(jobs)) if job_timeout else None
        checks = ([deadline.passed] if deadline else []) + ([stop.requested] if stop else [])
        # The run's output folder is on the submitting machine, out of sight
        # here: the task's checkpoints come and go through a scratch folder.
        with tempfile.TemporaryDirectory(prefix="nst-task-") as scratch:
            here = replace(options, output_dir=scratch)
            for job in jobs:
                if checkpoints.get(job.job_id) and here.checkpoint_every:
                    path = checkpoint_path(scratch, job.job_id)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(checkpoints[job.job_id])
            records = render_task(_engine, jobs, here, inputs=inputs, on_progress=on_progress,
                                  should_cancel=(lambda: any(check() for check in checks)) if checks else None)
            if here.checkpoint_every:
                records = [_with_checkpoint(scratch, record) for record in records]
    where = _this_worker()
    records = [{**record, **where} for record in records]
    if deadline is None or not deadline.expired:
        return records
    return [deadline.failure(record, len(jobs)) for record in records]


def _this_worker() -> dict[str, str]:
    """Which Dask worker, on which machine, rendered: "cuda:0" alone names a
    card on every machine of the cluster. The sidecar and the sheet keep it."""
    try:
        from distributed import get_worker

        return {"dask_worker": get_worker().address, "host": socket.gethostname()}
    except Exception:  # noqa: BLE001 (not on a Dask worker)
        return {}


def _with_checkpoint(scratch: str, record: dict[str, Any]) -> dict[str, Any]:
    """An unfinished job's record carries its checkpoint as it stands now:
    the bytes, or b"" for none (it was never made, or the worker dropped one
    that diverged). The submitting run's Recorder keeps or deletes its copy."""
    if record.get("status") == "done":
        return record
    path = checkpoint_path(scratch, record["job_id"])
    return {**record, "checkpoint": path.read_bytes() if path.is_file() else b""}


def torch_threads_here(device: str) -> int | None:
    """Threads for this worker's renders, shared among the Dask worker processes
    on this host as a local run shares them among its workers. Dask's nanny
    starts workers with OMP_NUM_THREADS=1, which left a CPU render on one core
    (and gave pixels that differ from a local run's). None outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
        hosts = [info.get("host") for info in worker.client.scheduler_info()["workers"].values()]
        here = max(1, hosts.count(worker.ip))
    except Exception:  # noqa: BLE001 (not on a Dask worker: leave torch's default)
        return None
    return threads_per_worker(here if device == "cpu" else 0, here)


def _note_start(channel: TaskChannel, jobs: list[RenderJob]) -> None:
    """Log on the scheduler that this worker starts these jobs (see TaskChannel).
    Through the client, not the worker's batched stream: the note must reach the
    scheduler before a crash can take the process down."""
    _note(channel.start_topic, {"jobs": [job.job_id for job in jobs]})


def _progress_notes(channel: TaskChannel):
    """The engine's progress events, passed on to the run at most once per PROGRESS_INTERVAL."""
    next_note = 0.0

    def note(event: dict[str, Any]) -> None:
        nonlocal next_note
        now = time.monotonic()
        if now >= next_note:
            next_note = now + PROGRESS_INTERVAL
            _note(channel.progress_topic, event)

    return note


def _note(topic: str, note: dict[str, Any]) -> None:
    """Log `note` on the scheduler's event log, saying which worker sends it.
    A note that cannot be sent is dropped: it is for display (and blame after
    a crash), and must never fail or slow a job."""
    try:
        from distributed import get_client, get_worker

        sender = {"worker": get_worker().address, "pid": os.getpid(), "host": socket.gethostname()}
        get_client().log_event(topic, {**note, **sender})
    except Exception:  # noqa: BLE001 (not inside a Dask worker: nothing to note, nothing lost)
        pass


class _StopCheck:
    """Whether the submitting run asked its tasks to stop (a Dask Event).

    The event is read through the worker's own client, which reaches the
    scheduler by the address the worker already uses (the submitting machine
    may know it by another). Each read is a round trip to the scheduler, so it
    happens at most once a second. A failed read means "not asked": a broken
    stop channel must not fail or slow a job.

    A task whose result nobody wants any more stops too: `nst render` was
    killed outright (its client's connection closed), or its run has ended.
    The scheduler then releases the task's key and this worker marks it
    cancelled; without this check the task rendered on to its end, for
    nothing, and held its GPU from the next run's tasks.
    """

    INTERVAL = 1.0

    def __init__(self, name: str) -> None:
        self._name = name
        self._next_read = 0.0
        self._set = False
        self._task = _this_task()  # made in the task's own thread, where Dask knows which task runs

    def requested(self) -> bool:
        if self._task is not None and _released(*self._task):  # local: no round trip
            return True
        now = time.monotonic()
        if not self._set and now >= self._next_read:
            self._next_read = now + self.INTERVAL
            try:
                from distributed import Event, get_client

                self._set = Event(self._name, client=get_client()).is_set()
            except Exception:  # noqa: BLE001 (not on a Dask worker, or the scheduler is gone)
                self._set = False
        return self._set


def _this_task():
    """(this Dask worker, the key of the task running in this thread), or None."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return worker, worker.get_current_task()
    except Exception:  # noqa: BLE001 (not inside a Dask task)
        return None


def _released(worker, key) -> bool:
    """Whether the scheduler let go of this running task: its worker marks it
    cancelled (the Dask worker's own state machine, read, not changed)."""
    try:
        task = worker.state.tasks.get(key)
    except Exception:  # noqa: BLE001 (another Dask version's layout: never stop a job on a guess)
        return False
    return task is not None and task.state == "cancelled"


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
