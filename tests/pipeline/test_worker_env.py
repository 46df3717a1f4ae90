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


def test_a_wait_policy_the_user_set_wins(monkeypatch):
    seen = {}
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(pipeline.worker_loop, "worker_main",
                        lambda *args: seen.update(policy=os.environ.get("OMP_WAIT_POLICY")))
    start_worker(0, "cuda:1", "options", "conn")
    assert seen == {"policy": "ACTIVE"}
