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
    def __init__(self, cluster, options, *, job_timeout: float | None = None) -> None:
        self.cluster = cluster
        self.options = options
        self.job_timeout = job_timeout  # enforced inside each task (cluster_task._Deadline)

    def run(self, todo: Sequence[RenderJob], listener: Listener, stop: StopSignal) -> None:
        import joblib

        from .cluster_task import render_on_cluster

        client, owned = _connect(self.cluster)
        try:
            workers = client.scheduler_info().get("workers", {})
            log.info("Dask cluster at %s with %d workers", client.scheduler.address, len(workers))
            by_id = {job.job_id: job for job in todo}
            tasks = (
                joblib.delayed(render_on_cluster)([job], self.options, _input_bytes([job]), self.job_timeout)
                for job in todo
            )
            reported: set[str] = set()
            try:
                with joblib.parallel_config(backend="dask", client=client, **_gpu_resources(client)):
                    results = joblib.Parallel(n_jobs=-1, batch_size=1, return_as="generator_unordered")(tasks)
                    for batch in results:
                        for record in batch:
                            record.setdefault("attempts", 1)
                            reported.add(record["job_id"])
                            listener.on_result(by_id[record["job_id"]], record)
                        if stop.level >= 1:
                            log.warning("stopping: tasks still on the cluster are abandoned and rerun next time")
                            break
            except Exception as error:  # e.g. KilledWorker: Dask gave up on a task
                # joblib aborts the whole batch on the first task error, so the
                # jobs not yet back are failed with the reason and rerun next time.
                reason = f"Dask cluster: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                for job in todo:
                    if job.job_id not in reported:
                        listener.on_result(job, failure_record(job, reason))
        finally:
            if owned:
                client.close()
