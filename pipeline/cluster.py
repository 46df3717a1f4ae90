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

from .errors import PipelineError
from .events import Listener, StopSignal, failure_record
from .jobs import RenderJob

log = logging.getLogger("nst")


def _connect(cluster):
    from dask.distributed import Client

    if not isinstance(cluster, str):
        return cluster, False  # a Client handed in (notebooks)
    try:
        return Client(cluster, timeout="20s", set_as_default=False), True
    except (OSError, TimeoutError) as error:
        raise PipelineError(f"--cluster: cannot reach the Dask scheduler at {cluster}: {error}") from None


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

    register_parallel_backend("nst-dask", AlwaysOnDask)
    return "nst-dask"


def _input_bytes(jobs: Sequence[RenderJob]) -> dict[str, bytes]:
    paths = {p for job in jobs for p in (job.content, *job.styles)}
    payload = {}
    for path in paths:
        try:
            payload[path] = Path(path).read_bytes()
        except OSError:
            continue  # the worker reports the missing file as this job's failure
    return payload


class DaskExecutor:
    def __init__(self, cluster, options, *, job_timeout: float | None = None, grace_seconds: float = 30.0) -> None:
        self.cluster = cluster
        self.options = options
        self.job_timeout = job_timeout  # enforced inside each task (cluster_task._Deadline)
        self.grace_seconds = grace_seconds

    def run(self, todo: Sequence[RenderJob], listener: Listener, stop: StopSignal) -> None:
        import joblib
        from distributed import Event

        from .cluster_task import render_on_cluster

        client, owned = _connect(self.cluster)
        try:
            workers = client.scheduler_info().get("workers", {})
            log.info("Dask cluster at %s with %d workers", client.scheduler.address, len(workers))
            # Running tasks poll this event (cluster_task._StopCheck): Dask cannot
            # interrupt a task, so a Ctrl-C would otherwise wait for every
            # running render to end, however long.
            stopping = Event(f"nst-stop-{uuid.uuid4().hex}", client=client)
            tasks = (
                joblib.delayed(render_on_cluster)(
                    [job], self.options, _input_bytes([job]), self.job_timeout,
                    (stopping.name, client.scheduler.address),
                )
                for job in todo
            )
            with joblib.parallel_config(backend=_dask_backend(), client=client, **_gpu_resources(client)):
                results = joblib.Parallel(n_jobs=-1, batch_size=1, return_as="generator_unordered")(tasks)
                self._collect(_read_in_background(results), todo, listener, stop, stopping)
        finally:
            if owned:
                client.close()

    def _collect(self, arrivals: queue.Queue, todo, listener: Listener, stop: StopSignal, stopping) -> None:
        """Record results as they come, and watch for a stop request between them."""
        by_id = {job.job_id: job for job in todo}
        reported: set[str] = set()
        grace_until: float | None = None
        while True:
            if stop.level >= 1 and grace_until is None:
                log.warning("stopping: the cluster's running tasks stop at their next check and render again next run")
                stopping.set()
                grace_until = time.monotonic() + self.grace_seconds
            if stop.level >= 2 or (grace_until is not None and time.monotonic() > grace_until):
                log.warning("stopped: tasks still on the cluster are abandoned and rerun next time")
                return
            try:
                arrival = arrivals.get(timeout=0.2)
            except queue.Empty:
                listener.on_idle()
                continue
            if arrival is _END:
                return
            if isinstance(arrival, Exception):  # e.g. KilledWorker: Dask gave up on a task
                # joblib aborts the whole run on the first task error, so the
                # jobs not yet back are failed with the reason and rerun next time.
                text = str(arrival).splitlines()[0] if str(arrival) else ""
                for job in todo:
                    if job.job_id not in reported:
                        listener.on_result(job, failure_record(job, f"Dask cluster: {type(arrival).__name__}: {text}"))
                return
            for record in arrival:
                record.setdefault("attempts", 1)
                reported.add(record["job_id"])
                listener.on_result(by_id[record["job_id"]], record)


_END = object()


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
        except Exception as error:  # handed to the caller, which owns the run
            arrivals.put(error)

    threading.Thread(target=read, name="nst-dask-results", daemon=True).start()
    return arrivals
