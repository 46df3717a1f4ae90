"""`nst plan`'s time estimate: from the output folder's own renders when it has
some, else the fixed CPU figure."""

from __future__ import annotations

import json

from nst_engine.settings import RenderSettings
from pipeline.estimate import describe
from pipeline.jobs import RenderJob
from pipeline.outputs import append_result
from pipeline.scheduler import Plan

SETTINGS = RenderSettings(size=512, iterations=100)  # 100 × 0.262144 MP = 26.2144 units of work


def _plan(jobs: int) -> Plan:
    todo = tuple(RenderJob(f"job{i}", "/x/cat.jpg", ("/x/starry.jpg",), SETTINGS, f"o{i}.png", "cat", "starry")
                 for i in range(jobs))
    return Plan(todo, ())


def _render(out, job_id, seconds, *, device="NVIDIA H100 80GB HBM3", when="2026-11-21T03:00:00Z", **stats):
    append_result(out, {"job_id": job_id, "status": stats.pop("status", "done"), "finished_at": when,
                        "settings": stats.pop("settings", SETTINGS.to_dict()),
                        "stats": {"seconds": seconds, "device": "cuda", "device_name": device, **stats}})


def _last_run(out, devices):
    (out / "summary.json").write_text(json.dumps({"devices": devices}), encoding="utf-8")


def test_without_history_the_estimate_is_the_cpu_figure(tmp_path):
    # 4 jobs × 26.2144 units × 4 s per unit = 419 s.
    assert describe(_plan(4), tmp_path) == "estimated 7 min on one 2-core CPU worker"


def test_the_folders_own_renders_set_the_speed_and_the_last_runs_devices_share_the_work(tmp_path):
    _render(tmp_path, "old", 500.0, device="x86_64", when="2026-11-20T01:00:00Z")  # another device, earlier
    _render(tmp_path, "a", 13.1072)  # 0.5 s per unit
    _render(tmp_path, "b", 26.2144, batch_size=2)  # a batch of 2 shares its seconds: 0.5 s per unit each
    _render(tmp_path, "c", 39.3216)  # 1.5 s per unit: the median of 0.5, 0.5, 1.5 is 0.5
    _render(tmp_path, "resumed", 1.0, resumed_from=90)  # did a tenth of the work: says nothing
    _render(tmp_path, "failed", 1.0, status="failed")
    _render(tmp_path, "damaged", 1.0, settings={"no_such_setting": 1})
    _last_run(tmp_path, [f"cuda:{i}" for i in range(8)])
    # 16 jobs × 26.2144 units × 0.5 s = 210 s of device time, over 8 GPUs: 26 s.
    assert describe(_plan(16), tmp_path) == (
        "estimated 26 s on 8 devices like the last run's (3 min of device time at the speed of "
        "this folder's last 3 renders on NVIDIA H100 80GB HBM3)")


def test_a_cluster_runs_size_is_not_guessed(tmp_path):
    _render(tmp_path, "a", 13.1072)
    _last_run(tmp_path, ["dask:tcp://head:8786"])
    assert describe(_plan(16), tmp_path) == (
        "estimated 3 min at the speed of this folder's last render on NVIDIA H100 80GB HBM3")
