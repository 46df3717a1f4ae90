"""A Dask run whose cluster goes away under it (the scheduler, or every
worker) ends in one line: the jobs not finished are recorded interrupted, to
render next run, and the run writes its summary and sheet as at any end."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from contextlib import contextmanager

import pytest
from dask_helpers import FREE_DASHBOARD_PORT, Collect, fake_jobs
from process_helpers import results, write_manifest

from pipeline import cluster as cluster_module
from pipeline import cluster_connect, cluster_failures, cluster_task
from pipeline.cluster import DaskExecutor
from pipeline.events import StopSignal
from pipeline.jobs import WorkerOptions
from pipeline.manifest import load_manifest
from pipeline.run import RenderOptions, execute

distributed = pytest.importorskip("distributed")

LOST_SCHEDULER = r"the Dask scheduler at \S+ stopped answering \(the connection to it closed(: [A-Za-z ]+)?\)"


# The cluster is in-process, so the test and its tasks share these.
_rendering, _release = threading.Event(), threading.Event()


def _job0_at_once_then_block(jobs, options, inputs, job_timeout, channel, checkpoints=None):
    """job0 is done at once; any other job renders until the test releases it
    (or for a minute)."""
    if jobs[0].job_id == "job0":
        return [{"job_id": "job0", "status": "done"}]
    _rendering.set()
    _release.wait(60)
    return [{"job_id": jobs[0].job_id, "status": "done"}]


def _noted_and_blocking(jobs, options, inputs, job_timeout, channel, checkpoints=None):
    """Notes its start on the scheduler, as a real task does (the sheet shows
    the job rendering), and renders until the test releases it."""
    cluster_task._note_start(channel, jobs)
    _rendering.set()
    _release.wait(60)
    return [{"job_id": jobs[0].job_id, "status": "done"}]


@pytest.fixture
def blocking_task(monkeypatch):
    def use(task) -> None:
        monkeypatch.setattr(cluster_task, "render_on_cluster", task)

    _rendering.clear()
    _release.clear()
    yield use
    _release.set()


@pytest.fixture
def dask_log():
    """What Dask itself logs (its loggers do not propagate to caplog's)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    dask_logger = logging.getLogger("distributed")
    dask_logger.addHandler(handler)
    yield records
    dask_logger.removeHandler(handler)


@contextmanager
def in_process_cluster(workers: int = 1):
    cluster = distributed.LocalCluster(processes=False, n_workers=workers, threads_per_worker=1,
                                       dashboard_address=FREE_DASHBOARD_PORT)
    try:
        yield cluster
    finally:
        import dask

        # Once its scheduler has closed, a LocalCluster's close spends the
        # whole connect timeout (30 s) trying to reach it.
        with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
            cluster.close()


def _lose_once_rendering(cluster, what: str = "scheduler", reported=lambda: True) -> None:
    """Close the scheduler, or every worker, once a task renders and
    `reported()` is true; then let the task end (the cluster's close waits for
    it; a task that starts again later runs through)."""
    def lose() -> None:
        deadline = time.monotonic() + 30
        while not (_rendering.is_set() and reported()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if what == "scheduler":
            cluster.sync(cluster.scheduler.close)
        else:  # as a `kill -9` of the last worker: the scheduler holds its task for another
            for worker in list(cluster.workers.values()):
                cluster.sync(worker.close, executor_wait=False)
        _release.set()

    threading.Thread(target=lose, daemon=True).start()


@contextmanager
def stopped_if_hung(stop: StopSignal):
    """A run that would wait forever is stopped at once after 30 s (its asserts
    then fail) instead of hanging the suite."""
    timer = threading.Timer(30, lambda: (stop.request(), stop.request()))
    timer.start()
    try:
        yield stop
    finally:
        timer.cancel()


@contextmanager
def interrupted_if_hung():
    """As stopped_if_hung, for a run through `execute`: a Ctrl-C after 30 s."""
    timer = threading.Timer(30, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def short_patience(monkeypatch):
    monkeypatch.setattr(cluster_connect, "NO_WORKER_PATIENCE", 1.0)
    monkeypatch.setattr(cluster_failures, "WORKER_CHECK_INTERVAL", 0.2)


def test_a_lost_scheduler_interrupts_the_jobs_not_reported_in_one_line(tmp_path, blocking_task, caplog, dask_log):
    # No notes from this task: the in-process worker's own client, reconnecting
    # too, would log its cancelled attempt as this run's client did.
    blocking_task(_job0_at_once_then_block)
    listener = Collect()
    with caplog.at_level("WARNING", logger="nst"), in_process_cluster() as cluster:
        _lose_once_rendering(cluster, reported=lambda: "job0" in listener.records)
        began = time.monotonic()
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
            fake_jobs(tmp_path), listener, StopSignal())  # raised an OSError after 20 s
        took = time.monotonic() - began
    assert _rendering.is_set(), "the task never started"
    assert {job_id: r["status"] for job_id, r in listener.records.items()} == {
        "job0": "done", "job1": "interrupted", "job2": "interrupted"}
    assert listener.records["job1"]["error"].startswith("interrupted: the Dask scheduler at ")
    (error,) = [r.getMessage() for r in caplog.records if r.name == "nst" and r.levelno >= logging.ERROR]
    assert re.fullmatch(LOST_SCHEDULER + "; 2 jobs left for next run", error), error
    assert took < 15, took  # not the client's 20 s wait to reconnect
    # Closing a client that still tries to reconnect: Dask logged the attempt it cancelled, with a traceback.
    assert not [r for r in dask_log if r.exc_info], [r.getMessage() for r in dask_log]


def test_a_scheduler_lost_while_the_run_waits_for_a_worker_interrupts_every_job(tmp_path, monkeypatch, dask_log):
    monkeypatch.setattr(cluster_connect, "SCHEDULER_TIMEOUT", 2.0)  # the client's wait to reconnect
    listener = Collect()
    with in_process_cluster(workers=0) as cluster:
        threading.Timer(1.0, cluster.sync, args=(cluster.scheduler.close,)).start()
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
            fake_jobs(tmp_path, 2), listener, StopSignal())  # raised a RuntimeError: a traceback
    assert {r["status"] for r in listener.records.values()} == {"interrupted"}
    assert set(listener.records) == {"job0", "job1"}
    # The run says it in its own line; Dask's client printed "Failed to reconnect …" beside it.
    assert not [r for r in dask_log if r.name == "distributed.client" and r.levelno >= logging.ERROR], \
        [r.getMessage() for r in dask_log]


@pytest.mark.parametrize(("what", "said"), [
    ("scheduler", LOST_SCHEDULER),
    ("workers", r"the Dask cluster at \S+ had no workers for 1 s"),
], ids=["scheduler", "every-worker"])
def test_a_run_that_loses_its_cluster_writes_its_results_and_exits_1(gallery_dir, blocking_task, short_patience,
                                                                     what, said):
    blocking_task(_noted_and_blocking)
    folder = gallery_dir.parent
    manifest = load_manifest(write_manifest(folder, ["chelsea"], ["starry_night", "night_cafe"],
                                            settings={"size": 32, "iterations": 5}))
    with in_process_cluster() as cluster, interrupted_if_hung():
        _lose_once_rendering(cluster, what)
        code = execute(manifest, RenderOptions(cluster=cluster.scheduler_address, live=False, quiet=True,
                                               grace_seconds=1))
    out = folder / "out"
    assert code == 1  # some jobs did not complete
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["exit_code"], summary["interrupted"], summary["pending"]) == (1, 2, 0), summary
    assert [r["status"] for r in results(out)] == ["interrupted", "interrupted"]
    sheet = (out / "index.html").read_text()
    assert 'data-status="interrupted"' in sheet and 'data-status="rendering"' not in sheet
    log = (out / "nst.log").read_text()
    assert re.search(r"ERROR " + said + "; 2 jobs left for next run\n", log), log
    assert "Traceback" not in log


def test_a_cluster_that_loses_every_worker_waits_for_one_then_gives_up(tmp_path, blocking_task, short_patience,
                                                                       caplog):
    blocking_task(_job0_at_once_then_block)
    listener = Collect()
    with caplog.at_level("INFO", logger="nst"), in_process_cluster() as cluster:
        _lose_once_rendering(cluster, "workers", reported=lambda: "job0" in listener.records)
        with stopped_if_hung(StopSignal()) as stop:
            DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
                fake_jobs(tmp_path), listener, stop)  # waited for a worker forever
    assert {job_id: r["status"] for job_id, r in listener.records.items()} == {
        "job0": "done", "job1": "interrupted", "job2": "interrupted"}
    said = [r.getMessage() for r in caplog.records if r.name == "nst" and r.levelno >= logging.WARNING]
    assert len(said) == 2, said
    assert re.fullmatch(r"the Dask cluster at \S+ has no workers left: waiting up to 1 s for one to join", said[0])
    assert re.fullmatch(r"the Dask cluster at \S+ had no workers for 1 s; 2 jobs left for next run", said[1])


def _join_once_warned(cluster, caplog) -> None:
    """A new worker joins once the run has warned that it has none left."""
    def join() -> None:
        deadline = time.monotonic() + 30
        while not any("has no workers left" in message for message in caplog.messages):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        cluster.scale(2)  # the closed worker still counts as one

    threading.Thread(target=join, daemon=True).start()


def test_a_worker_that_joins_while_the_run_waits_gets_thefake_jobs(tmp_path, blocking_task, monkeypatch, caplog):
    monkeypatch.setattr(cluster_failures, "WORKER_CHECK_INTERVAL", 0.2)
    blocking_task(_job0_at_once_then_block)
    listener = Collect()
    with caplog.at_level("INFO", logger="nst"), in_process_cluster() as cluster:
        _lose_once_rendering(cluster, "workers", reported=lambda: "job0" in listener.records)
        _join_once_warned(cluster, caplog)
        with stopped_if_hung(StopSignal()) as stop:
            DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
                fake_jobs(tmp_path), listener, stop)
    assert {job_id: r["status"] for job_id, r in listener.records.items()} == {
        "job0": "done", "job1": "done", "job2": "done"}
    assert any(re.fullmatch(r"the Dask cluster at \S+ has no workers left: waiting up to 300 s for one to join",
                            message) for message in caplog.messages), caplog.messages
    assert not [r for r in caplog.records if r.name == "nst" and r.levelno >= logging.ERROR]


def test_a_round_that_starts_with_no_workers_left_waits_for_one_as_mid_round(tmp_path, short_patience, monkeypatch,
                                                                            caplog):
    # The last worker leaves just as a round starts (after the run saw one):
    # joblib waited for a worker on its own, silent, then raised a TimeoutError
    # of several lines.
    monkeypatch.setattr(cluster_task, "render_on_cluster", _job0_at_once_then_block)
    listener, before_round = Collect(), cluster_module._gpu_resources

    with caplog.at_level("WARNING", logger="nst"), in_process_cluster() as cluster:
        def workers_leave_then_look(client):
            for worker in list(cluster.workers.values()):
                cluster.sync(worker.close)
            return before_round(client)

        monkeypatch.setattr(cluster_module, "_gpu_resources", workers_leave_then_look)
        with stopped_if_hung(StopSignal()) as stop:
            DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
                fake_jobs(tmp_path), listener, stop)
    said = [r.getMessage() for r in caplog.records if r.name == "nst" and r.levelno >= logging.WARNING]
    assert len(said) == 2, said
    assert re.fullmatch(r"the Dask cluster at \S+ has no workers left: waiting up to 1 s for one to join", said[0])
    assert re.fullmatch(r"the Dask cluster at \S+ had no workers for 1 s; 3 jobs left for next run", said[1])
    assert {r["status"] for r in listener.records.values()} == {"interrupted"} and len(listener.records) == 3


def test_a_job_that_starts_again_after_its_worker_left_says_so_in_one_line(tmp_path, blocking_task, monkeypatch,
                                                                          caplog):
    # A local run logs a worker that died under a job; a Dask run only showed
    # the job starting again, on another worker.
    monkeypatch.setattr(cluster_failures, "WORKER_CHECK_INTERVAL", 0.2)
    blocking_task(_noted_and_blocking)  # the notes of its starts are what the run goes by
    listener = Collect()
    with caplog.at_level("INFO", logger="nst"), in_process_cluster() as cluster:
        (first,) = [worker.address for worker in cluster.workers.values()]
        _lose_once_rendering(cluster, "workers")
        _join_once_warned(cluster, caplog)
        with stopped_if_hung(StopSignal()) as stop:
            DaskExecutor(cluster.scheduler_address, WorkerOptions(str(tmp_path))).run(
                fake_jobs(tmp_path, 1), listener, stop)
        (second,) = [worker.address for worker in cluster.workers.values() if worker.address != first]
    assert listener.records["job0"]["status"] == "done"
    said = [r.getMessage() for r in caplog.records if r.name == "nst" and r.levelno >= logging.WARNING]
    assert said[1:] == [f"o0 started again on {second}: the worker that ran it ({first}) left the cluster"], said


def test_a_lost_connection_is_said_without_dasks_internals():
    # Dask's comm error, as the run printed it on the terminal and on every card.
    class CommClosedError(OSError):
        pass

    raw = CommClosedError("in <TCP (closed) ConnectionPool.ncores local=tcp://127.0.0.1:50696 "
                          "remote=tcp://127.0.0.1:8786>: ConnectionResetError: [Errno 104] Connection reset by peer")
    assert cluster_failures.connection_reason(raw) == "the connection to it closed: Connection reset by peer"
    assert cluster_failures.connection_reason(ConnectionRefusedError(111, "Connection refused")) == (
        "the connection to it closed: Connection refused")
    assert cluster_failures.connection_reason(TimeoutError()) == "it did not answer in time"
