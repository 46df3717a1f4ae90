"""How many workers a local run starts: never more than it has jobs for, and a
warning when CPU workers would outnumber the cores."""

from __future__ import annotations

import os

import yaml
from cli_helpers import SAMPLES, explain, nst, write_manifest

from pipeline import devices


def test_a_run_starts_no_more_workers_than_it_has_jobs(tmp_path):
    manifest = write_manifest(tmp_path / "one.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                              [SAMPLES / "style" / "night_cafe.jpg"])
    result = nst("render", manifest, "--devices", "cpu*3", cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert "starting 1 of the 3 workers asked for: only 1 job to render" in result.stderr, explain(result)
    assert "worker 0 on cpu" in result.stderr and "worker 1" not in result.stderr, explain(result)


def test_more_cpu_workers_than_cores_is_warned_of(monkeypatch):
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 2)
    assert devices.cpu_oversubscription(("cpu", "cpu")) is None
    assert devices.cpu_oversubscription(("cuda:0", "cuda:1", "cuda:2", "cpu")) is None
    warning = devices.cpu_oversubscription(("cpu",) * 8)
    assert warning.startswith("8 CPU workers on 2 cores: they take turns on the cores")


def test_a_dry_run_warns_of_the_cpu_workers_it_would_start(tmp_path):
    cores = os.cpu_count() or 1
    manifest = write_manifest(tmp_path / "sweep.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                              [SAMPLES / "style" / "night_cafe.jpg"])
    data = yaml.safe_load(manifest.read_text())
    data["jobs"][0]["sweep"] = {"seed": list(range(cores + 2))}  # a job for every worker asked for
    manifest.write_text(yaml.safe_dump(data))
    crowded = nst("render", manifest, "--dry-run", "--devices", f"cpu*{cores + 1}", cwd=tmp_path)
    assert crowded.returncode == 0, explain(crowded)
    assert f"warning: {cores + 1} CPU workers on {cores} cores" in crowded.stdout, explain(crowded)
    one = nst("render", manifest, "--dry-run", "--devices", "cpu", cwd=tmp_path)
    assert one.returncode == 0 and "CPU workers on" not in one.stdout, explain(one)


def test_bf16_asked_of_a_cpu_that_only_emulates_it_is_warned_of(monkeypatch, tmp_path):
    # Emulated bf16 ran a 256 px render for over 8 minutes where fp32 takes ~15 s.
    import io

    from rich.console import Console

    from nst_engine import cpu_model
    from pipeline import plan_view
    from pipeline.manifest import load_manifest
    from pipeline.run import RenderOptions, make_plan

    manifest_path = write_manifest(tmp_path / "m.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                                   [SAMPLES / "style" / "night_cafe.jpg"], settings={"precision": "bf16"})
    jobs = load_manifest(manifest_path).jobs
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: False)
    warning = devices.emulated_bf16(jobs, ("cpu",))
    assert warning.startswith("1 job asks for precision: bf16, which this CPU only emulates"), warning
    assert devices.emulated_bf16(jobs, ("cuda:0",)) is None  # a GPU has bf16
    auto = load_manifest(write_manifest(tmp_path / "auto.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                                        [SAMPLES / "style" / "night_cafe.jpg"])).jobs
    assert devices.emulated_bf16(auto, ("cpu",)) is None  # auto means fp32 on this CPU
    # The plan (and --dry-run) says it where it names the devices.
    manifest = load_manifest(manifest_path)
    console = Console(width=200, file=io.StringIO(), color_system=None)
    plan_view.print_plan(console, manifest, make_plan(manifest, RenderOptions()), devices=("cpu",))
    assert f"warning: {warning}" in console.file.getvalue()
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: True)
    assert devices.emulated_bf16(jobs, ("cpu",)) is None
