"""What a worker process sets up before torch loads: OpenMP's wait policy."""

from __future__ import annotations

import os

import pytest

import pipeline.worker_loop
from pipeline.worker_handle import start_worker


@pytest.mark.parametrize(("device", "expected"), [("cpu", None), ("cuda:0", "PASSIVE")])
def test_only_gpu_workers_wait_passively(monkeypatch, device, expected):
    # A CPU worker's renders were ~16% slower with passive OpenMP waits; a GPU
    # worker's CPU threads mostly wait, and must not spin while they do.
    seen = {}
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(pipeline.worker_loop, "worker_main",
                        lambda *args: seen.update(policy=os.environ.get("OMP_WAIT_POLICY"), args=args))
    start_worker(3, device, "options", "conn")
    assert seen == {"policy": expected, "args": (3, device, "options", "conn")}


def test_the_worker_entries_run_here_left_this_process_ctrl_c_as_it_was():
    # start_worker above ignored SIGINT here, as a worker does. Left so, every
    # later test's child process inherited the ignored SIGINT and could not be
    # stopped by one (tests/conftest.py puts the dispositions back).
    import signal

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_wait_policy_the_user_set_wins(monkeypatch):
    seen = {}
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(pipeline.worker_loop, "worker_main",
                        lambda *args: seen.update(policy=os.environ.get("OMP_WAIT_POLICY")))
    start_worker(0, "cuda:1", "options", "conn")
    assert seen == {"policy": "ACTIVE"}


def test_a_ctrl_c_while_a_worker_starts_neither_kills_it_nor_prints_a_traceback(tmp_path):
    # In a terminal a Ctrl-C reaches every process of the group, workers that
    # are still importing torch included; the parent alone decides what it means.
    import multiprocessing
    import signal
    import time

    from pipeline.jobs import WorkerOptions
    from pipeline.worker_handle import WorkerHandle

    worker = WorkerHandle.start(multiprocessing.get_context("spawn"), 0, "cpu", WorkerOptions(str(tmp_path)))
    try:
        for _ in range(20):  # throughout its start, from the first moment
            os.kill(worker.process.pid, signal.SIGINT)
            time.sleep(0.05)
        assert worker.conn.poll(120), "the worker died"
        kind, _ = worker.conn.recv()
        assert kind == "ready"
    finally:
        worker.request_stop()
        worker.process.join(10)
        if worker.process.is_alive():
            worker.process.kill()
