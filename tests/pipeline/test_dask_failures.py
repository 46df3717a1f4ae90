"""A task that Dask gives up on (e.g. KilledWorker) must not crash the run:
the jobs not yet reported fail with a one-line reason and rerun next time."""

from __future__ import annotations

import re
import threading

import pytest
from dask_helpers import FREE_DASHBOARD_PORT, Collect, fake_jobs

from pipeline import cluster as cluster_module
from pipeline import cluster_connect, cluster_task
from pipeline.cluster import ABANDONED_REASON, DaskExecutor
from pipeline.errors import PipelineError
from pipeline.events import StopSignal
from pipeline.jobs import WorkerOptions

distributed = pytest.importorskip("dask.distributed")


def test_a_task_dask_gives_up_on_fails_the_unreported_jobs_with_one_line(tmp_path, monkeypatch):
    def fake_task(jobs, options, inputs, job_timeout, channel, checkpoints=None):
        if jobs[0].job_id == "job1":
            raise RuntimeError("worker lost\nsecond line of detail")
        return [{"job_id": jobs[0].job_id, "status": "failed", "error": "fake"}]

    monkeypatch.setattr(cluster_task, "render_on_cluster", fake_task)
    listener = Collect()
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
            fake_jobs(tmp_path), listener, StopSignal()
        )
    assert set(listener.records) == {"job0", "job1", "job2"}  # every job has an outcome
    lost = listener.records["job1"]
    assert lost["status"] == "failed"
    assert lost["error"] == "Dask cluster: RuntimeError: worker lost"  # one line


# The cluster is in-process, so the test and its task share these.
_task_running, _release_task = threading.Event(), threading.Event()


def _stubborn_task(jobs, options, inputs, job_timeout, channel, checkpoints=None):
    """A task that never looks at the stop event (as one stuck in a long CUDA call):
    it ends when the test releases it, or after a minute."""
    cluster_task._note_start(channel, jobs)  # as a real task does: the run knows it started
    _task_running.set()
    _release_task.wait(60)
    return [{"job_id": jobs[0].job_id, "status": "done"}]


@pytest.mark.parametrize(("requests", "grace"), [(1, 1.0), (2, 60.0)], ids=["grace-ends", "second-signal"])
def test_a_stop_does_not_wait_for_tasks_that_ignore_it(tmp_path, monkeypatch, requests, grace):
    import time

    monkeypatch.setattr(cluster_task, "render_on_cluster", _stubborn_task)
    _task_running.clear()
    _release_task.clear()
    listener, stop, pressed = Collect(), StopSignal(), []

    def press_ctrl_c() -> None:
        if _task_running.wait(60):  # a stop sent before the task runs would test nothing
            pressed.append(time.monotonic())
        for _ in range(requests):
            stop.request()

    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        try:
            DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path)), grace_seconds=grace).run(
                fake_jobs(tmp_path)[:1], listener, stop
            )
            took = time.monotonic() - pressed[0] if pressed else None
        finally:
            _release_task.set()  # the cluster's exit waits for the task
    assert pressed, "the task never started"
    assert took < 20, took  # a grace of 1 s or none; the task would run 60 s
    # Abandoned: recorded interrupted, as a local run's running jobs are; it renders next run.
    assert {job_id: record["status"] for job_id, record in listener.records.items()} == {"job0": "interrupted"}
    assert listener.records["job0"]["error"] == ABANDONED_REASON


def _run_with_no_workers(tmp_path, stop, listener, during=None):
    with distributed.LocalCluster(processes=False, n_workers=0, dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        if during:
            threading.Timer(1.5, during, args=(cluster,)).start()
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path)), grace_seconds=1).run(
            fake_jobs(tmp_path)[:1], listener, stop)
        return cluster.scheduler_address


def test_a_cluster_with_no_workers_says_so_and_a_stop_ends_the_wait(tmp_path, caplog):
    stop, listener = StopSignal(), Collect()
    threading.Timer(1.5, stop.request).start()
    with caplog.at_level("WARNING", logger="nst"):
        address = _run_with_no_workers(tmp_path, stop, listener)
    assert f"the Dask cluster at {address} has no workers yet: waiting up to 300 s for one to join" \
        in caplog.messages
    assert listener.records == {}  # nothing ran, nothing failed: all of it renders next run


def test_a_cluster_that_never_gets_a_worker_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_connect, "NO_WORKER_PATIENCE", 1.0)
    with pytest.raises(PipelineError) as caught:
        _run_with_no_workers(tmp_path, StopSignal(), Collect())
    assert re.fullmatch(r"the Dask cluster at \S+ had no workers for 1 s; nothing was rendered", str(caught.value))


def test_a_worker_that_joins_late_gets_thefake_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_task, "render_on_cluster", lambda jobs, *rest: [
        {"job_id": jobs[0].job_id, "status": "failed", "error": "fake"}])
    listener = Collect()
    _run_with_no_workers(tmp_path, StopSignal(), listener, during=lambda cluster: cluster.scale(1))
    assert list(listener.records) == ["job0"]


def test_a_result_reader_stopped_by_a_base_exception_hands_it_on():
    # asyncio's CancelledError is a BaseException: a reader that only caught
    # Exception died of it silently, and the run waited for results forever.
    import asyncio

    def results():
        yield [{"job_id": "job0", "status": "done"}]
        raise asyncio.CancelledError("scheduler-connection-lost")

    arrivals = cluster_module._read_in_background(results())
    assert arrivals.get(timeout=10) == [{"job_id": "job0", "status": "done"}]
    assert isinstance(arrivals.get(timeout=10), asyncio.CancelledError)
