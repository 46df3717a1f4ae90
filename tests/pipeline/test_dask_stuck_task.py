"""A Dask task stuck inside one iteration (a hung device call) never reaches
its own job_timeout check, and Dask cannot stop it. The run gives up on it a
margin past its job_timeout, fails that job alone, and ends with the rest of
the gallery instead of waiting all night."""

from __future__ import annotations

import re
import threading
import time

import pytest
from dask_helpers import FREE_DASHBOARD_PORT, Collect, fake_jobs

from pipeline import cluster as cluster_module
from pipeline import cluster_task
from pipeline.cluster import DaskExecutor, stuck_after
from pipeline.events import StopSignal
from pipeline.jobs import WorkerOptions

distributed = pytest.importorskip("distributed")

# The cluster is in-process, so the test and its tasks share these.
_unstick, _late_result_sent = threading.Event(), threading.Event()


def _job1_stuck(jobs, options, inputs, job_timeout, channel, checkpoints=None):
    """job1 notes its start, as a real task does, then hangs until released
    (ignoring its deadline, as a hung device call would). job2 starts once
    job1's late result is sent and renders for a second, so that result
    reaches the run before the round ends. job0 is done at once."""
    job_id = jobs[0].job_id
    if job_id == "job2":
        _late_result_sent.wait(60)
    cluster_task._note_start(channel, jobs)
    if job_id == "job1":
        _unstick.wait(60)
        _late_result_sent.set()
    elif job_id == "job2":
        time.sleep(1.0)  # less than stuck_after(0.5): job2 is slow, not stuck
    return [{"job_id": job_id, "status": "done"}]


class CountResults(Collect):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def on_result(self, job, record) -> None:
        super().on_result(job, record)
        self.calls.append(job.job_id)
        if job.job_id == "job1":
            _unstick.set()  # the given-up task returns now, before the round ends


@pytest.fixture
def stuck_task(monkeypatch):
    monkeypatch.setattr(cluster_task, "render_on_cluster", _job1_stuck)
    monkeypatch.setattr(cluster_module, "STUCK_MARGIN_SECONDS", 1.0)
    _unstick.clear()
    _late_result_sent.clear()
    yield
    _unstick.set()


def test_a_stuck_task_fails_its_job_alone_and_the_run_ends(tmp_path, stuck_task):
    listener = CountResults()
    cluster = distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=3, dashboard_address=FREE_DASHBOARD_PORT)
    with cluster:
        began = time.monotonic()
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path)), job_timeout=0.5).run(
            fake_jobs(tmp_path), listener, StopSignal())  # waited for job1 as long as it hung
        took = time.monotonic() - began
    assert _late_result_sent.is_set(), "the stuck task was never released"
    assert {job_id: r["status"] for job_id, r in listener.records.items()} == {
        "job0": "done", "job1": "failed", "job2": "done"}
    # One result per job: job1's own "done", come after the run gave up on it, is dropped.
    assert sorted(listener.calls) == ["job0", "job1", "job2"], listener.calls
    stuck = listener.records["job1"]
    worker = stuck["dask_worker"]  # the worker's address: inproc://… here, tcp://… on a real cluster
    assert re.fullmatch(r"[a-z]+://\S+", worker), worker
    assert stuck["error"] == (f"timed out after 0.5 s on {worker}, stuck inside an iteration; Dask cannot stop "
                              "the task, which holds that worker until it returns")
    assert took < 20, took


def test_stuck_after_leaves_a_margin_that_grows_with_the_timeout():
    assert stuck_after(10) == 10 + cluster_module.STUCK_MARGIN_SECONDS
    assert stuck_after(3600) == 3600 + 900  # a quarter of it, past the fixed margin
