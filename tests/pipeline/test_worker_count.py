"""How many workers a local run starts: never more than it has jobs for, and a
warning when CPU workers would outnumber the cores."""

from __future__ import annotations

import logging

from cli_helpers import SAMPLES, explain, nst, write_manifest

from pipeline import run


def test_a_run_starts_no_more_workers_than_it_has_jobs(tmp_path):
    manifest = write_manifest(tmp_path / "one.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                              [SAMPLES / "style" / "night_cafe.jpg"])
    result = nst("render", manifest, "--devices", "cpu*3", cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert "starting 1 of the 3 workers asked for: only 1 job to render" in result.stderr, explain(result)
    assert "worker 0 on cpu" in result.stderr and "worker 1" not in result.stderr, explain(result)


def test_more_cpu_workers_than_cores_is_warned_of(monkeypatch, caplog):
    monkeypatch.setattr(run.os, "cpu_count", lambda: 2)
    with caplog.at_level(logging.INFO, logger=run.log.name):
        run._warn_if_cpu_workers_outnumber_cores(("cpu", "cpu"))
        run._warn_if_cpu_workers_outnumber_cores(("cuda:0", "cuda:1", "cuda:2", "cpu"))
        assert caplog.records == []
        run._warn_if_cpu_workers_outnumber_cores(("cpu",) * 8)
    (warned,) = caplog.records
    assert warned.levelno == logging.WARNING
    assert warned.getMessage().startswith("8 CPU workers on 2 cores: they take turns on the cores")
