"""`nst plan`'s time estimate: from the output folder's own renders when it has
some, else the fixed CPU figure; the sides the engine will really render at;
plus the run's start-up and each job's own overhead."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from PIL import Image

from nst_engine import cpu_model
from nst_engine.settings import RenderSettings
from pipeline.estimate import PER_JOB_SECONDS, STARTUP_SECONDS, content_longest_sides, describe
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


NO_SIDES: dict = {}  # photos the plan could not open: the settings' own sizes


@pytest.fixture(autouse=True)
def bf16_cpu(monkeypatch):
    """The development CPU (AVX-512 BF16), whatever this one has: the figures below are its."""
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: True)


def test_without_history_the_estimate_is_the_cpu_figure(tmp_path):
    # 4 jobs × 26.2144 units × 4 s per unit = 419 s, + 5 s start + 4 × 0.5 s.
    assert (STARTUP_SECONDS, PER_JOB_SECONDS) == (5.0, 0.5)
    assert describe(_plan(4), tmp_path, NO_SIDES) == "estimated 7 min at a 2-core CPU's speed (no render here to measure yet)"


def test_without_history_an_fp32_render_is_estimated_at_twice_the_time(tmp_path, monkeypatch):
    # 4 × 26.2144 units × 10 s = 1049 s, + 7 s: a CPU with AVX2 only renders `auto` in fp32.
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: False)
    assert describe(_plan(4), tmp_path, NO_SIDES) == (
        "estimated 18 min at a 2-core CPU's speed in fp32, as this CPU has no native bf16 (no render here to measure yet)")
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: True)
    fp32 = Plan(tuple(replace(job, settings=SETTINGS.with_overrides(precision="fp32")) for job in _plan(4).todo), ())
    assert describe(fp32, tmp_path, NO_SIDES) == (
        "estimated 18 min at a 2-core CPU's speed in fp32 (no render here to measure yet)")


def test_small_renders_count_their_start_up_and_overheads(tmp_path):
    # 4 jobs of 64 px × 5 iterations: 0.08 s of rendering, ~7 s of the rest. "0 s" before.
    tiny = Plan(tuple(RenderJob(f"j{i}", "/x/cat.jpg", ("/x/s.jpg",), RenderSettings(size=64, iterations=5),
                                f"o{i}.png", "cat", "s") for i in range(4)), ())
    assert describe(tiny, tmp_path, NO_SIDES) == "estimated 7 s at a 2-core CPU's speed (no render here to measure yet)"
    assert describe(Plan((), ()), tmp_path, NO_SIDES) == "estimated 0 s"


def test_a_photo_smaller_than_the_size_is_estimated_at_its_own_size(tmp_path):
    photo = tmp_path / "cat.jpg"
    Image.new("RGB", (256, 170)).save(photo)
    job = RenderJob("j", str(photo), ("/x/s.jpg",), RenderSettings(size=2048, iterations=100), "o.png", "cat", "s")
    sides = content_longest_sides([job])
    assert sides == {str(photo): 256}
    # 100 × 0.065536 MP × 4 s = 26 s, + 5.5 s; at 2048 px (512→1024→2048) it would be 2.6 h.
    assert describe(Plan((job,), ()), tmp_path, sides) == "estimated 32 s at a 2-core CPU's speed (no render here to measure yet)"
    assert content_longest_sides([RenderJob("k", str(tmp_path / "gone.jpg"), (), job.settings, "p.png", "g", "s")]) \
        == {str(tmp_path / "gone.jpg"): None}


def test_the_folders_own_renders_set_the_speed_and_the_last_runs_devices_share_the_work(tmp_path):
    _render(tmp_path, "old", 500.0, device="x86_64", when="2026-11-20T01:00:00Z")  # another device, earlier
    _render(tmp_path, "a", 13.1072)  # 0.5 s per unit
    _render(tmp_path, "b", 26.2144, batch_size=2)  # a batch of 2 shares its seconds: 0.5 s per unit each
    _render(tmp_path, "c", 39.3216)  # 1.5 s per unit: the median of 0.5, 0.5, 1.5 is 0.5
    _render(tmp_path, "resumed", 1.0, resumed_from=90)  # did a tenth of the work: says nothing
    _render(tmp_path, "failed", 1.0, status="failed")
    _render(tmp_path, "damaged", 1.0, settings={"no_such_setting": 1})
    _last_run(tmp_path, [f"cuda:{i}" for i in range(8)])
    # 16 jobs × 26.2144 units × 0.5 s = 210 s of device time, over 8 GPUs: 26 s, + 5 s + 16 × 0.5 / 8.
    assert describe(_plan(16), tmp_path, NO_SIDES) == (
        "estimated 32 s on 8 devices like the last run's (3 min of device time at the speed of "
        "this folder's last 3 renders on NVIDIA H100 80GB HBM3)")


def test_a_cluster_runs_size_is_not_guessed(tmp_path):
    _render(tmp_path, "a", 13.1072)
    _last_run(tmp_path, ["dask:tcp://head:8786"])
    # 210 s of device time, as if on one device, + 5 s + 16 × 0.5 s: 223 s.
    assert describe(_plan(16), tmp_path, NO_SIDES) == (
        "estimated 4 min at the speed of this folder's last render on NVIDIA H100 80GB HBM3")


def test_a_render_that_came_out_smaller_is_timed_at_the_size_it_rendered(tmp_path):
    # Asked 512, rendered at 256 (a small photo): 100 × 0.065536 MP in 6.5536 s is 1 s
    # per unit, not the 0.25 the asked size would make it look.
    _render(tmp_path, "small", 6.5536)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    record = {**json.loads(lines[0]), "effective": {"scales": [256]}}
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    assert describe(_plan(1), tmp_path, NO_SIDES).startswith("estimated 32 s at the speed")


def test_the_devices_the_run_will_start_share_the_work_and_cpu_workers_count_once(tmp_path):
    _render(tmp_path, "a", 13.1072)  # 0.5 s per unit
    _last_run(tmp_path, [f"cuda:{i}" for i in range(8)])
    # --devices cuda:0,cuda:1 this time: 210 s over 2 GPUs, + 5 s + 16 × 0.5 / 2.
    assert describe(_plan(16), tmp_path, NO_SIDES, ("cuda:0", "cuda:1")) == (
        "estimated 2 min on 2 devices (3 min of device time at the speed of "
        "this folder's last render on NVIDIA H100 80GB HBM3)")
    # Four CPU workers share one CPU's cores: as fast as one worker, not four times.
    assert describe(_plan(16), tmp_path, NO_SIDES, ("cpu",) * 4) == describe(_plan(16), tmp_path, NO_SIDES, ("cpu",))
    assert "devices" not in describe(_plan(16), tmp_path, NO_SIDES, ("cpu",) * 4)
    _last_run(tmp_path, ["cpu", "cpu"])  # nor as two devices when they were the last run's
    assert "devices" not in describe(_plan(16), tmp_path, NO_SIDES)
