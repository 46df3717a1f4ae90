"""A Dask run shows its workers, the jobs they start and their iterations, as a
local run does: the tasks note them on the scheduler, and the run follows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dask_helpers import FREE_DASHBOARD_PORT
from process_helpers import write_manifest

from pipeline import cluster_task
from pipeline.cluster import DaskExecutor
from pipeline.cluster_task import PROGRESS_INTERVAL, TaskChannel
from pipeline.events import StopSignal
from pipeline.jobs import WorkerOptions
from pipeline.manifest import load_manifest
from pipeline.run import RenderOptions, execute

distributed = pytest.importorskip("distributed")

REPO_IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"


class Watch:
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_worker(self, slot, device, info) -> None:
        self.seen.append(("worker", slot, device, info["pid"]))

    def on_start(self, slot, jobs) -> None:
        self.seen.append(("start", slot, [job.job_id for job in jobs]))

    def on_progress(self, slot, event) -> None:
        self.seen.append(("progress", slot, event["job_ids"], event["done"], event["total"]))

    def on_result(self, job, record) -> None:
        self.seen.append(("result", job.job_id, record["status"]))

    def on_idle(self) -> None: ...


@pytest.mark.slow
def test_the_run_shows_which_worker_renders_what_and_how_far_it_got(tmp_path, monkeypatch):
    import torch

    shutil.copytree(REPO_IMAGES, tmp_path / "images")
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("pipeline.cluster_task.PROGRESS_INTERVAL", 0.0)  # every 10 iterations
    manifest = write_manifest(tmp_path, ["chelsea"], ["starry_night", "night_cafe"],
                              settings={"size": 32, "iterations": 30})
    jobs = load_manifest(manifest).jobs
    watch, threads = Watch(), torch.get_num_threads()
    torch.set_num_threads(1)  # the in-process cluster renders in this process
    try:
        with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
            worker = next(iter(cluster.workers.values())).address
            DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path / "out"))).run(
                jobs, watch, StopSignal())
    finally:
        torch.set_num_threads(threads)
    assert watch.seen[0] == ("worker", 0, worker, os.getpid())  # an in-process worker
    for job in jobs:  # each job starts, moves and ends, in that order, on worker 0
        expected = ([("start", 0, [job.job_id])]
                    + [("progress", 0, [job.job_id], done, 30) for done in (10, 20, 30)]
                    + [("result", job.job_id, "done")])
        assert [seen for seen in watch.seen if seen in expected] == expected, watch.seen
    assert len(watch.seen) == 1 + 5 * len(jobs), watch.seen  # and nothing else
    assert PROGRESS_INTERVAL == 1.0  # the real throttle, patched above only for this test


def test_progress_goes_to_the_scheduler_at_most_once_a_second(monkeypatch):
    sent, clock = [], iter([0.0, 0.5, 0.99, 1.0, 1.2, 2.5])
    monkeypatch.setattr(cluster_task, "_note", lambda topic, note: sent.append((topic, note["done"])))
    monkeypatch.setattr(cluster_task.time, "monotonic", lambda: next(clock))
    note = cluster_task._progress_notes(TaskChannel("run1"))
    for done in (10, 20, 30, 40, 50, 60):
        note({"job_ids": ["a"], "done": done, "total": 60})
    assert sent == [("nst-progress-run1", 10), ("nst-progress-run1", 40), ("nst-progress-run1", 60)]


@pytest.mark.slow
def test_a_cluster_run_logs_its_workers_and_what_they_start(tmp_path, monkeypatch):
    import torch

    shutil.copytree(REPO_IMAGES, tmp_path / "images")
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    manifest = load_manifest(write_manifest(tmp_path, ["chelsea"], ["starry_night"],
                                            settings={"size": 32, "iterations": 5}))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
            code = execute(manifest, RenderOptions(cluster=cluster.scheduler_address, live=False, quiet=True))
            worker = next(iter(cluster.workers.values())).address
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    log = (tmp_path / "out" / "nst.log").read_text()
    assert f"worker 0 on {worker} (" in log and f"is ready, pid {os.getpid()}" in log, log
    assert f"worker 0 starts {manifest.jobs[0].output_name.removesuffix('.png')}" in log, log


class Topics:
    """The two calls ClusterProgress makes on a Dask client; `note` plays the scheduler."""

    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}

    def subscribe_topic(self, topic, handler) -> None:
        self.handlers[topic] = handler

    def unsubscribe_topic(self, topic) -> None: ...  # a handler may still fire: the note was on its way

    def note(self, topic: str, job_ids: list[str], worker: str) -> None:
        self.handlers[topic]((0.0, {"jobs": job_ids, "worker": worker, "pid": 1, "host": "h"}))


def test_a_restart_is_a_second_start_in_one_round_not_a_start_in_the_next(caplog):
    from nst_engine.settings import RenderSettings
    from pipeline.cluster_progress import ClusterProgress
    from pipeline.jobs import RenderJob

    job = RenderJob(job_id="j1", content="/x/cat.jpg", styles=("/x/starry.jpg",), settings=RenderSettings(),
                    output_name="cat--starry.png", content_label="cat", style_label="starry")
    watch, client = Watch(), Topics()
    progress = ClusterProgress(watch)
    first, second = TaskChannel("round1"), TaskChannel("round2")
    with caplog.at_level("WARNING", logger="nst"):
        progress.follow(client, first)
        client.note(first.start_topic, ["j1"], "tcp://a:1")
        progress.deliver({"j1": job}, set())
        progress.unfollow(client)
        # joblib dropped the round's tasks (KilledWorker elsewhere); the next round submits j1 afresh.
        progress.follow(client, second)
        client.note(first.start_topic, ["j1"], "tcp://a:1")  # the old round's, late: its task was dropped
        client.note(second.start_topic, ["j1"], "tcp://b:2")
        progress.deliver({"j1": job}, set())
        assert caplog.messages == []
        assert progress.attempts("j1") == 1  # the first round's start is not this round's
        client.note(second.start_topic, ["j1"], "tcp://c:3")  # tcp://b:2 left the cluster
        progress.deliver({"j1": job}, set())
        assert progress.attempts("j1") == 2  # as a local run counts its retry after a worker died
    assert caplog.messages == ["cat--starry started again on tcp://c:3: the worker that ran it (tcp://b:2) left the cluster"]
    assert [seen[2] for seen in watch.seen if seen[0] == "start"] == [["j1"]] * 3


def _started_twice(jobs, options, inputs, job_timeout, channel, checkpoints=None):
    """job1 notes two starts, as a task that Dask ran again after its first
    worker left; the others one."""
    for _ in range(2 if jobs[0].job_id == "job1" else 1):
        cluster_task._note_start(channel, jobs)
    return [{"job_id": jobs[0].job_id, "status": "done"}]


def test_a_job_dask_ran_again_after_its_worker_left_says_two_attempts(tmp_path, monkeypatch):
    from dask_helpers import Collect, fake_jobs

    monkeypatch.setattr(cluster_task, "render_on_cluster", _started_twice)
    listener = Collect()
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
            fake_jobs(tmp_path), listener, StopSignal())
    assert {job_id: r["attempts"] for job_id, r in listener.records.items()} == {"job0": 1, "job1": 2, "job2": 1}
