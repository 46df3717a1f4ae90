"""What a Dask run does when the cluster fails under it, rather than a job failing.

The run's own loop (cluster.DaskExecutor) stays about submitting jobs and
collecting results; deciding who is to blame, and what becomes of the jobs
not reported, is here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from .events import Listener, failure_record
from .jobs import RenderJob

log = logging.getLogger("nst")


def after_error(error: Exception, left: list[RenderJob], started, listener: Listener) -> list[RenderJob]:
    """Fail the jobs to blame for the error that ended a round; the others run again."""
    killers = jobs_that_killed(error, left, started)
    if not killers:  # not one job's fault (the scheduler went away...): the rest waits for next run
        text = str(error).splitlines()[0] if str(error) else ""
        for job in left:
            listener.on_result(job, failure_record(job, f"Dask cluster: {type(error).__name__}: {text}"))
        return []
    again = [job for job in left if job.job_id not in killers]
    for job in left:
        if job.job_id in killers:
            starts = killers[job.job_id]
            log.warning("Dask gave up on %s: every worker that ran it died; %d other jobs go on",
                        job.output_name, len(again))
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
