"""What a Dask run does when the cluster fails under it, rather than a job failing.

The run's own loop (cluster.DaskExecutor) stays about submitting jobs and
collecting results; deciding who is to blame, and what becomes of the jobs
not reported, is here.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Sequence

from .display import job_name
from .events import Listener, failure_record
from .jobs import RenderJob
from .labels import count

log = logging.getLogger("nst")


class ClusterLost(Exception):
    """The cluster as a whole went away under the run, not one job's worker:
    its jobs are no one's fault and render next run. The message is one line."""


def cluster_lost(client, error: BaseException) -> ClusterLost | None:
    """The ClusterLost behind `error`, if the cluster went away: the error
    itself (WorkerWatch), or a lost scheduler.

    When the connection to the scheduler closes, the Dask client cancels every
    future at once (reason "scheduler-connection-lost"), and joblib raises
    that as the round's error; the client then tries to reconnect for its
    whole timeout. Asking the scheduler anything more (to stop the round's
    tasks, to read who started what) waited out that timeout and raised an
    OSError, which ended the run with no results written. Such an OSError
    (a TimeoutError too) is a lost scheduler as well.
    """
    if isinstance(error, ClusterLost):
        return error
    address = client.scheduler.address
    # A client that gave up reconnecting is closed: its error then says only
    # "ConnectionPool closing.", in Dask's words for its own state.
    if getattr(error, "reason", None) == "scheduler-connection-lost" or client.status != "running":
        return ClusterLost(f"the Dask scheduler at {address} stopped answering (the connection to it closed)")
    if isinstance(error, OSError):
        return ClusterLost(f"the Dask scheduler at {address} stopped answering ({connection_reason(error)})")
    return None


def connection_reason(error: OSError) -> str:
    """What became of the connection, without Dask's internals: its comm errors read
    "in <TCP (closed) ConnectionPool.ncores local=… remote=…>: ConnectionResetError:
    [Errno 104] Connection reset by peer", on the terminal and on every card."""
    if isinstance(error, TimeoutError):
        return "it did not answer in time"
    last = first_line(error).rsplit(": ", 1)[-1]
    reason = error.strerror or re.sub(r"^\[Errno \d+\]\s*", "", last)
    return f"the connection to it closed: {reason}" if reason else "the connection to it closed"


# How often a run waiting for results asks the scheduler whether it has a worker left.
WORKER_CHECK_INTERVAL = 2.0


class WorkerWatch:
    """Notices a cluster left with no workers in the middle of a round.

    Dask holds a task whose workers all left until another joins, however
    long: the run waited in silence, holding the output folder's lock, so the
    next night's run could not start either. As at the start of a run, it
    warns, waits up to `patience` seconds for a worker to join (Dask then
    reschedules the tasks there, and the run goes on), and else gives up.
    """

    def __init__(self, client, patience: float) -> None:
        self._client = client
        self._patience = patience
        self._next_check = time.monotonic() + WORKER_CHECK_INTERVAL
        self._alone_since: float | None = None

    def lost(self) -> ClusterLost | None:
        """Call between results; asks the scheduler at most every WORKER_CHECK_INTERVAL."""
        now = time.monotonic()
        if now < self._next_check or self._client.status != "running":  # a lost scheduler is the round's error
            return None
        self._next_check = now + WORKER_CHECK_INTERVAL
        address = self._client.scheduler.address
        if self._client.nthreads():  # asks the scheduler, unlike scheduler_info()'s cached copy
            if self._alone_since is not None:
                log.info("a worker joined the Dask cluster at %s: the run goes on", address)
                self._alone_since = None
            return None
        if self._alone_since is None:
            self._alone_since = now
            log.warning("the Dask cluster at %s has no workers left: waiting up to %.0f s for one to join",
                        address, self._patience)
        elif now - self._alone_since >= self._patience:
            return ClusterLost(f"the Dask cluster at {address} had no workers for {self._patience:.0f} s")
        return None


def interrupt_unfinished(left: Sequence[RenderJob], listener: Listener, lost: ClusterLost) -> None:
    """One error line for the run, and an interrupted result for each job not
    reported: to do next run, as after a stop, not failed and not left
    showing "rendering" on the sheet."""
    log.error("%s; %s left for next run", lost, count(len(left), "job"))
    for job in left:
        listener.on_result(job, {"job_id": job.job_id, "status": "interrupted",
                                 "error": f"interrupted: {lost}; resumes next run"})


def close_client(client) -> None:
    """Close the run's Dask client. One whose scheduler went away is still
    trying to reconnect, and Dask logs the attempt that closing cancels as an
    error with a traceback. The run has said what happened, in one line: Dask's
    client log is quiet while it closes."""
    if client.status == "running":
        client.close()
        return
    client_log = logging.getLogger("distributed.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        client.close()
    finally:
        client_log.setLevel(level)


def first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def after_error(error: BaseException, left: list[RenderJob], started, listener: Listener) -> list[RenderJob]:
    """Fail the jobs to blame for the error that ended a round; the others run again."""
    killers = jobs_that_killed(error, left, started)
    if not killers:  # not one job's fault, nor a lost cluster (cluster_lost): every job left fails with it
        text = str(error).splitlines()[0] if str(error) else ""
        for job in left:
            listener.on_result(job, failure_record(job, f"Dask cluster: {type(error).__name__}: {text}"))
        return []
    again = [job for job in left if job.job_id not in killers]
    for job in left:
        if job.job_id in killers:
            starts = killers[job.job_id]
            log.warning("Dask gave up on %s: every worker that ran it died; %s on",
                        job_name(job), count(len(again), "other job") + (" goes" if len(again) == 1 else " go"))
            reason = f"Dask cluster: the worker died each of the {starts} times it ran this job ({type(error).__name__})"
            listener.on_result(job, {**failure_record(job, reason), "attempts": starts})
    return again


def jobs_that_killed(error: Exception, left: Sequence[RenderJob], started: Sequence) -> dict[str, int]:
    """The jobs to blame for a KilledWorker, with how often each started.

    Dask gives up on a task when every worker that ran it died, and names the
    last of those workers. The tasks note each start in the scheduler's event
    log (`started`: (time, {"jobs": [...], "worker": address}) pairs). Of the
    jobs not reported, those that started on that worker were running when it
    died; the one that started most often is the one that keeps killing workers.
    """
    last_worker = getattr(getattr(error, "last_worker", None), "address", None)
    if type(error).__name__ != "KilledWorker" or last_worker is None:
        return {}
    starts: Counter[str] = Counter()
    on_last_worker: set[str] = set()
    for _, note in started:
        for job_id in note.get("jobs", ()):
            starts[job_id] += 1
            if note.get("worker") == last_worker:
                on_last_worker.add(job_id)
    suspects = {job.job_id: starts[job.job_id] for job in left if job.job_id in on_last_worker}
    most = max(suspects.values(), default=0)
    return {job_id: count for job_id, count in suspects.items() if count == most}
