"""Run a plan on a Dask distributed cluster, through joblib's `dask` backend.

This is the path for more than one machine: the scheduling, worker failure
handling and data movement are Dask's. Each task carries its input images as
bytes, so workers need no shared filesystem; results come back as PNG bytes
and are written here by the same Recorder as a local run, so the outputs are
identical.

Start workers one per GPU, each seeing only its own device:
    CUDA_VISIBLE_DEVICES=0 dask worker tcp://HOST:8786 --nthreads 1 --resources GPU=1
When the workers advertise a GPU resource, every task asks for GPU=1, so a
worker never runs two renders on one card.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from . import cluster_connect  # as a module: tests shorten its timeouts
from .cluster_failures import (
    WorkerWatch,
    after_error,
    close_client,
    cluster_lost,
    interrupt_unfinished,
)
from .cluster_progress import ClusterProgress
from .cluster_task import NOT_STARTED
from .events import Listener, StopSignal, failure_record, timeout_reason
from .jobs import RenderJob, checkpoint_path
from .labels import count

log = logging.getLogger("nst")

# A task checks its job_timeout between iterations (cluster_task._Deadline).
# One that has not answered this long past it is stuck inside an iteration (a
# hung device call): the run stops waiting for it, or it would wait all night.
# The margin leaves room for a slow iteration (a large image on a CPU worker).
STUCK_MARGIN_SECONDS = 120.0


def stuck_after(job_timeout: float) -> float:
    """Seconds after its start that a task with no result counts as stuck."""
    return job_timeout + max(STUCK_MARGIN_SECONDS, job_timeout / 4)


def _gpu_resources(client) -> dict[str, int]:
    workers = client.scheduler_info().get("workers", {}).values()
    if any("GPU" in (w.get("resources") or {}) for w in workers):
        return {"resources": {"GPU": 1}}
    return {}


def _dask_backend() -> str:
    """joblib's dask backend, made never to run the tasks in this process.

    joblib runs a call itself, here, when its backend reports one slot, and the
    dask backend reports the cluster's thread count: a cluster of one
    single-thread worker (one GPU, as the README starts them) rendered on the
    submitting machine instead. Reporting at least 2 keeps every task on Dask.
    """
    from joblib import register_parallel_backend
    from joblib._dask import DaskDistributedBackend  # the class behind backend="dask"

    class AlwaysOnDask(DaskDistributedBackend):
        def effective_n_jobs(self, n_jobs):
            return max(2, super().effective_n_jobs(n_jobs))

        def submit(self, func, callback=None):
            # joblib 1.6 calls `callback` only for a task that returned; when
            # Dask gives up on one (KilledWorker: every worker that ran it
            # died), Parallel waited for it forever. Handed the error, joblib
            # raises it as it raises a task's own exception.
            future = super().submit(func, callback)

            def on_error(done) -> None:
                if callback is not None and not done.cancelled() and done.exception() is not None:
                    callback(done.exception())

            future.add_done_callback(on_error)
            return future

    register_parallel_backend("nst-dask", AlwaysOnDask)
    return "nst-dask"


def _input_bytes(jobs: Sequence[RenderJob]) -> dict[str, bytes]:
    paths = {p for job in jobs for p in (job.content, *job.styles, job.settings.init_file()) if p}
    payload = {}
    for path in paths:
        try:
            payload[path] = Path(path).read_bytes()
        except OSError:
            continue  # the worker reports the missing file as this job's failure
    return payload


def _checkpoint_bytes(options, jobs: Sequence[RenderJob]) -> dict[str, bytes]:
    """The checkpoints an earlier run's stopped tasks sent back, by job id."""
    if not options.checkpoint_every:
        return {}
    payload = {}
    for job in jobs:
        try:
            payload[job.job_id] = checkpoint_path(options.output_dir, job.job_id).read_bytes()
        except OSError:
            continue  # none (the usual case), or unreadable: the job starts from zero
    return payload


class DaskExecutor:
    def __init__(self, cluster, options, *, job_timeout: float | None = None, grace_seconds: float = 30.0,
                 source: str = "--cluster") -> None:
        self.cluster = cluster
        self.source = source  # how errors name where the address came from
        self.options = options
        self.job_timeout = job_timeout  # enforced inside each task (cluster_task._Deadline)
        self.grace_seconds = grace_seconds

    def run(self, todo: Sequence[RenderJob], listener: Listener, stop: StopSignal) -> None:
        client, owned = cluster_connect.connect(self.cluster, stop, self.source)
        if client is None:  # stopped while connecting
            return
        pending, reported = list(todo), set()  # the round's jobs; the ids with a result
        try:
            workers = client.scheduler_info().get("workers", {})
            log.info("Dask cluster at %s with %s", client.scheduler.address, count(len(workers), "worker"))
            if not workers and not cluster_connect.wait_for_a_worker(client, stop):
                return
            progress = ClusterProgress(listener)
            while pending and stop.level == 0:
                pending = self._round(client, pending, listener, stop, progress, reported)
        except Exception as error:
            lost = cluster_lost(client, error)
            if lost is None:
                raise
            # A call to the scheduler outside a round's wait for results (a
            # round's setup, the wait for a worker) found it gone.
            interrupt_unfinished([job for job in pending if job.job_id not in reported], listener, lost)
        finally:
            if owned:
                close_client(client)

    def _round(self, client, jobs: list[RenderJob], listener: Listener, stop: StopSignal,
               progress: ClusterProgress, reported: set[str]) -> list[RenderJob]:
        """Run `jobs` in one joblib call, adding the ids of those it reports to
        `reported`. Returns the jobs to run again: after Dask gave up on one
        job, joblib drops every task it has not returned."""
        import joblib
        from distributed import Event

        from .cluster_task import TaskChannel, render_on_cluster

        channel = TaskChannel(uuid.uuid4().hex)
        # Running tasks poll this event (cluster_task._StopCheck): Dask cannot
        # interrupt a task, so a Ctrl-C would otherwise wait for every
        # running render to end, however long.
        stopping = Event(channel.stop_event, client=client)
        tasks = (
            joblib.delayed(render_on_cluster)([job], self.options, _input_bytes([job]), self.job_timeout, channel,
                                              checkpoints=_checkpoint_bytes(self.options, [job]))
            for job in jobs
        )
        progress.follow(client, channel)  # before any task starts: a topic does not replay its past
        try:
            # No wait for a worker in joblib (10 s, then a multi-line TimeoutError,
            # and silent until then): the tasks wait on the scheduler, and the
            # WorkerWatch warns and waits for a worker, as when the last one
            # leaves in the middle of a round.
            with joblib.parallel_config(backend=_dask_backend(), client=client,
                                        wait_for_workers_timeout=0, **_gpu_resources(client)):
                results = joblib.Parallel(n_jobs=-1, batch_size=1, return_as="generator_unordered")(tasks)
                error = self._collect(_read_in_background(results), jobs, listener, stop, stopping,
                                      progress, reported, WorkerWatch(client, cluster_connect.NO_WORKER_PATIENCE))
        finally:
            progress.unfollow(client)
        if error is None:
            return []
        left = [job for job in jobs if job.job_id not in reported]
        lost = cluster_lost(client, error)
        if lost is not None:  # its tasks are gone with it, or wait for a worker that never came
            interrupt_unfinished(left, listener, lost)
            return []
        stopping.set()  # this round's tasks still running elsewhere stop at their next check
        return after_error(error, left, client.get_events(channel.start_topic), listener)

    def _collect(self, arrivals: queue.Queue, todo, listener: Listener, stop: StopSignal, stopping,
                 progress: ClusterProgress, reported: set[str], workers: WorkerWatch) -> BaseException | None:
        """Record results as they come (adding their ids to `reported`), and
        watch for a stop request, and for a cluster left with no workers,
        between them. Returns the error that ended joblib's call, or the
        ClusterLost that ends the wait for a worker, if one did."""
        by_id = {job.job_id: job for job in todo}
        grace_until: float | None = None
        while True:
            if stop.level >= 1 and grace_until is None:
                log.warning("stopping: the cluster's running tasks stop at their next check and send back a checkpoint")
                stopping.set()
                grace_until = time.monotonic() + self.grace_seconds
            if stop.level >= 2 or (grace_until is not None and time.monotonic() > grace_until):
                log.warning("stopped: tasks still on the cluster are abandoned and rerun next time")
                progress.deliver(by_id, reported)
                # Started and not back: interrupted, as a local run records its running jobs.
                for job_id in progress.started() - reported:
                    listener.on_result(by_id[job_id], {"job_id": job_id, "status": "interrupted",
                                                       "error": ABANDONED_REASON})
                return None
            lost = workers.lost()
            if lost is not None:
                stopping.set()  # a task that a late worker starts now stops at once
                return lost
            try:
                arrival = arrivals.get(timeout=0.2)
            except queue.Empty:
                progress.deliver(by_id, reported)
                self._give_up_on_stuck_tasks(progress, by_id, listener, reported)
                if reported.issuperset(by_id):
                    return None  # joblib's results would wait for the stuck tasks too
                listener.on_idle()
                continue
            progress.deliver(by_id, reported)  # a task's notes came before its result: show them first
            if arrival is _END:
                return None
            if isinstance(arrival, BaseException):  # e.g. KilledWorker: Dask gave up on a task
                return arrival
            for record in arrival:
                if record["job_id"] in reported:  # a stuck task's result, come after the run gave up on it
                    continue
                record.setdefault("attempts", progress.attempts(record["job_id"]))
                reported.add(record["job_id"])
                if not record.get(NOT_STARTED):  # never started: still pending, no warning in cron's mail
                    listener.on_result(by_id[record["job_id"]], record)

    def _give_up_on_stuck_tasks(self, progress: ClusterProgress, by_id, listener: Listener,
                                reported: set[str]) -> None:
        """Fail the jobs whose tasks are stuck (see STUCK_MARGIN_SECONDS), as
        a local run fails a job past its timeout. Dask cannot stop those
        tasks; each keeps its worker's thread until it returns."""
        if not self.job_timeout:
            return
        for job_id, worker in progress.running_longer_than(stuck_after(self.job_timeout), reported).items():
            reason = (timeout_reason(self.job_timeout, worker, 1)
                      + ", stuck inside an iteration; Dask cannot stop the task, which holds that worker until it returns")
            listener.on_result(by_id[job_id], {**failure_record(by_id[job_id], reason), "dask_worker": worker, "attempts": 1})
            reported.add(job_id)


_END = object()
ABANDONED_REASON = "interrupted: abandoned on the cluster by the stop; starts over next run"


def _read_in_background(results) -> queue.Queue:
    """joblib's result generator, read on a thread: reading it blocks until the
    next task ends, and the caller must keep watching for a stop meanwhile.
    The queue gets each task's records, then _END, or the exception raised."""
    arrivals: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for records in results:
                arrivals.put(records)
            arrivals.put(_END)
        except BaseException as error:  # handed to the caller, which owns the run
            # BaseException: asyncio's CancelledError is not an Exception, and
            # a reader that died of it silently would leave the run waiting forever.
            arrivals.put(error)

    threading.Thread(target=read, name="nst-dask-results", daemon=True).start()
    return arrivals
