"""Run a plan on this machine: one spawned worker process per device.

The parent never imports torch. It hands each idle worker its next batch (so a
faster device simply asks more often), watches every worker's pipe and process
sentinel, and owns every decision about failure:

- a worker that dies (SIGKILL, segfault, lost GPU) is replaced, and the jobs it
  held are retried once;
- a batch of N jobs past N × `job_timeout` has its worker killed and is
  reported failed (its N images share the device, so each still gets the
  time it would have had alone);
- a first stop request cancels running jobs (they checkpoint) and waits up to
  `grace_seconds`; a second one kills the workers at once.

joblib/loky was considered and not used here: loky's pool cannot pin a device
per worker, and a worker's death breaks the whole pool. Dask (cluster.py) is the
engine for more than one machine.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import wait

from .display import job_name
from .events import Listener, StopSignal, failure_record, interrupted_record, timeout_reason
from .jobs import RenderJob, checkpoint_path
from .scheduler import DEFAULT_BATCH_CAP, next_batch
from .worker_handle import WorkerHandle

log = logging.getLogger("nst")

MAX_ATTEMPTS = 2  # the first try and one retry after a worker died under the job
MAX_STARTS_WITHOUT_PROGRESS = 3  # a device whose workers keep dying is given up
SHUTDOWN_SECONDS = 5.0  # for workers to leave on their own at the end of a run


class LocalExecutor:
    def __init__(
        self,
        devices: Sequence[str],
        options,
        *,
        job_timeout: float | None = None,
        batch_cap: int = DEFAULT_BATCH_CAP,
        explicit_batch: bool = False,
        grace_seconds: float = 30.0,
    ) -> None:
        self.devices = list(devices)
        self.options = options
        self.job_timeout = job_timeout
        self.batch_cap = batch_cap
        # A CPU worker reports no batch room (a batch only delays each image
        # there), unless the manifest asked for batches with run.batch_size.
        self.explicit_batch = explicit_batch
        self.grace_seconds = grace_seconds
        self._context = multiprocessing.get_context("spawn")  # never fork: CUDA

    def run(self, todo: Sequence[RenderJob], listener: Listener, stop: StopSignal) -> None:
        self._pending = list(todo)
        self._open = {job.job_id for job in todo}
        self._attempts: dict[str, int] = {}
        self._retry_alone: set[str] = set()
        self._listener = listener
        self._last_fatal = ""
        workers = [self._start(slot, device) for slot, device in enumerate(self.devices)]
        try:
            self._loop(workers, stop)
        finally:
            self._shutdown(workers, now=stop.level >= 2)

    # -- the loop ------------------------------------------------------------------
    def _loop(self, workers: list[WorkerHandle], stop: StopSignal) -> None:
        cancel_deadline: float | None = None
        while self._open:
            if stop.level >= 2:
                return
            if stop.level == 1 and cancel_deadline is None:
                cancel_deadline = time.monotonic() + self.grace_seconds
                self._pending.clear()  # not started: they stay to do next run
                for worker in workers:
                    worker.cancel()
            if cancel_deadline is not None and (
                not any(w.busy for w in workers) or time.monotonic() > cancel_deadline
            ):
                return
            self._pump(workers)
            self._listener.on_idle()
            for index, worker in enumerate(workers):
                workers[index] = self._supervise(worker, stopping=cancel_deadline is not None)
            if cancel_deadline is None and stop.level == 0:  # a signal may have come during _pump
                self._dispatch(workers)
            if not any(w.alive or w.restartable for w in workers):
                self._fail_remaining(f"no worker could run: {self._last_fatal or 'all workers failed'}")
                return
            if not self._pending and not any(w.busy for w in workers):
                return

    def _pump(self, workers: list[WorkerHandle]) -> None:
        """Wait briefly for any pipe or process to speak, then handle everything ready."""
        live = [w for w in workers if w.alive]
        waitables = [w.conn for w in live] + [w.process.sentinel for w in live]
        if not waitables:
            time.sleep(0.2)
        else:
            wait(waitables, timeout=0.2)
        for worker in live:
            self._read(worker)

    def _read(self, worker: WorkerHandle) -> None:
        for kind, payload in worker.drain():
            self._handle(worker, kind, payload)

    def _handle(self, worker: WorkerHandle, kind: str, payload) -> None:
        if kind == "ready":
            worker.mark_ready(payload)
            worker.starts_without_progress = 0  # it started: a later death is not a startup loop
            self._listener.on_worker(worker.slot, worker.device, payload)
        elif kind == "progress":
            self._listener.on_progress(worker.slot, payload)
        elif kind == "result":
            job = worker.finish_job(payload["job_id"])
            if job is not None and job.job_id in self._open:
                self._open.discard(job.job_id)
                payload["attempts"] = self._attempts.get(job.job_id, 0) + 1
                self._listener.on_result(job, payload)
        elif kind == "fatal":
            self._last_fatal = payload["error"]
            worker.retire()

    def _supervise(self, worker: WorkerHandle, *, stopping: bool = False) -> WorkerHandle:
        """Replace a dead worker; enforce the timeout on a busy one. During a
        stop a dead worker's jobs are interrupted, not retried, and it is not
        replaced: a fresh worker would only load the weights to be stopped."""
        allowed = self._allowed_seconds(worker)
        if allowed is not None and worker.busy and worker.busy_seconds() > allowed:
            held = worker.kill()
            self._discard_partial_checkpoints(worker, held)
            for job in held:
                self._close(job, timeout_reason(allowed, worker.device, worker.assigned))
            return self._restart(worker)
        if worker.alive or worker.retired:
            return worker
        # What it sent just before it exited (a last result, or why it could not
        # start) is still in the pipe; read it before counting its jobs as lost.
        self._read(worker)
        if worker.retired:
            return worker
        exit_code = worker.process.exitcode
        held = worker.take_held()
        self._discard_partial_checkpoints(worker, held)
        log.warning("worker %d on %s (pid %s) died (%s)%s", worker.slot, worker.device, worker.process.pid,
                    _exit_reason(exit_code), f" under {', '.join(job_name(job) for job in held)}" if held else "")
        if stopping:
            for job in held:
                self._close(job, f"interrupted: its worker died during the stop ({_exit_reason(exit_code)}); "
                                 "resumes next run", status="interrupted")
            worker.shutdown()
            worker.retire()
            return worker
        for job in reversed(held):
            self._attempts[job.job_id] = self._attempts.get(job.job_id, 0) + 1
            if self._attempts[job.job_id] < MAX_ATTEMPTS:
                # Retried next, on whichever worker is free, and alone: if one
                # image of a batch kills its worker, the others must not die
                # with it a second time and fail too.
                self._pending.insert(0, job)
                self._retry_alone.add(job.job_id)
            else:
                self._close(job, f"worker process died twice under this job ({_exit_reason(exit_code)})")
        return self._restart(worker)

    def _restart(self, worker: WorkerHandle) -> WorkerHandle:
        worker.shutdown()  # reap the old process and close its pipe: no fd leak per restart
        if not self._pending:  # nothing for a fresh one to do (the last job timed out): start none
            worker.retire()
            return worker
        if worker.starts_without_progress >= MAX_STARTS_WITHOUT_PROGRESS:
            worker.retire()
            return worker
        fresh = self._start(worker.slot, worker.device)
        fresh.starts_without_progress = worker.starts_without_progress + 1
        return fresh

    def _dispatch(self, workers: list[WorkerHandle]) -> None:
        able = sum(1 for w in workers if w.alive or w.restartable)  # busy ones come back for more
        for worker in workers:
            if not self._pending:
                return
            if not worker.idle:
                continue
            retry = next((job for job in self._pending if job.job_id in self._retry_alone), None)
            batch = [retry] if retry is not None else next_batch(
                self._pending, worker.held_styles,
                batch_cap=self.batch_cap, max_batch_pixels=self._batch_room(worker), workers=able,
            )
            for job in batch:
                self._pending.remove(job)
            worker.assign(batch)
            self._listener.on_start(worker.slot, batch)

    def _shutdown(self, workers: list[WorkerHandle], *, now: bool) -> None:
        """No worker outlives the run. All are asked at once and waited for
        together (not 5 s each in turn); after a second signal they are killed.
        The jobs of a worker killed here are recorded interrupted: the last
        checkpoint each saved, if any, resumes it next run."""
        if not now:
            for worker in workers:
                worker.request_stop()
            deadline = time.monotonic() + SHUTDOWN_SECONDS
            # Keep reading while they leave: a render that ends now (one that
            # finished as the grace period ran out) still has its result saved.
            while time.monotonic() < deadline and any(w.process.is_alive() for w in workers):
                self._pump(workers)
            for worker in workers:
                self._read(worker)
        for worker in workers:
            if worker.process.is_alive():
                held = worker.kill()
                self._discard_partial_checkpoints(worker, held)
                why = "stopped at once by a second signal" if now else "still rendering when the stop's grace period ran out"
                for job in held:
                    self._close(job, f"interrupted: {why}; resumes next run", status="interrupted")
            worker.shutdown()

    def _discard_partial_checkpoints(self, worker: WorkerHandle, jobs: list[RenderJob]) -> None:
        """A worker killed inside a checkpoint save leaves its temp file behind
        (named `.<job>.pt.<pid>.tmp` by worker_checkpoints.save_checkpoint); the last whole
        checkpoint is untouched and still resumes the job."""
        pid = worker.process.pid
        for job in jobs:
            path = checkpoint_path(self.options.output_dir, job.job_id)
            with contextlib.suppress(OSError):
                path.with_name(f".{path.name}.{pid}.tmp").unlink(missing_ok=True)

    # -- helpers -------------------------------------------------------------------
    def _allowed_seconds(self, worker: WorkerHandle) -> float | None:
        """`job_timeout` per job of the batch the worker holds. A batch of N renders
        its N images side by side, and on a GPU takes up to N times as long as
        one (or more, when memory pressure makes it fall back to one image at a
        time), so one job's allowance for the whole batch would fail healthy
        batches that a user sized job_timeout for single jobs."""
        if not self.job_timeout:
            return None
        return self.job_timeout * max(1, worker.assigned)

    def _batch_room(self, worker: WorkerHandle) -> int:
        if worker.max_batch_pixels > 0 or not self.explicit_batch:
            return worker.max_batch_pixels
        return sys.maxsize  # memory is not the limit asked about; the cap is

    def _start(self, slot: int, device: str) -> WorkerHandle:
        return WorkerHandle.start(self._context, slot, device, self.options)

    def _close(self, job: RenderJob, reason: str, *, status: str = "failed") -> None:
        if job.job_id in self._open:
            self._open.discard(job.job_id)
            record = failure_record(job, reason) if status == "failed" else interrupted_record(job, reason)
            self._listener.on_result(job, record)

    def _fail_remaining(self, reason: str) -> None:
        for job in list(self._pending):
            self._close(job, reason)
        self._pending.clear()


def _exit_reason(exit_code: int | None) -> str:
    """'killed by SIGKILL' (a kill -9, the kernel's out-of-memory killer), 'exit code 1'..."""
    if exit_code is not None and exit_code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exit_code).name}"
    return f"exit code {exit_code}"
