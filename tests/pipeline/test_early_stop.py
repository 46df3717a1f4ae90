"""A signal before the first worker starts: while the plan is made, or while the
devices are looked up (torch's import and CUDA's start take seconds). summary.json
and nst.log must still say how the run ended: a script reading summary.json after
a Ctrl-C must not find the run before's `exit_code: 0`."""

from __future__ import annotations

import json
import os
import signal

import pytest
from cli_helpers import SAMPLES, write_manifest
from process_helpers import start, wait_for

from pipeline import devices, run
from pipeline.local_executor import LocalExecutor
from pipeline.manifest import load_manifest
from pipeline.outputs import write_json_atomic
from pipeline.run import RenderOptions, execute
from pipeline.stop_signals import Terminated


def _manifest(tmp_path, iterations: int = 5):
    return write_manifest(tmp_path / "m.yaml",
                          [SAMPLES / "content" / "chelsea.jpg", SAMPLES / "content" / "neuschwanstein.jpg"],
                          [SAMPLES / "style" / "starry_night.jpg"], settings={"size": 32, "iterations": iterations})


def _summary(manifest) -> dict:
    return json.loads((manifest.output_dir / "summary.json").read_text())


def _an_earlier_run_that_ended_well(manifest) -> None:
    manifest.output_dir.mkdir(parents=True)
    write_json_atomic(manifest.output_dir / "summary.json",
                      {"manifest": str(manifest.path), "started_at": "2026-11-21T01:00:00Z", "exit_code": 0})


def test_a_signal_while_planning_still_writes_the_summary_and_the_last_line(tmp_path, monkeypatch):
    manifest = load_manifest(_manifest(tmp_path))
    _an_earlier_run_that_ended_well(manifest)

    def terminated_while_planning(*args, **kwargs):
        raise Terminated(signal.SIGTERM)  # what cli_errors' handler raises on SIGTERM

    monkeypatch.setattr(run, "make_plan", terminated_while_planning)
    with pytest.raises(Terminated):
        execute(manifest, RenderOptions(devices=("cpu",), live=False, quiet=True))
    summary = _summary(manifest)
    assert (summary["exit_code"], summary["pending"], summary["rendered"]) == (143, 2, 0), summary
    assert summary["finished_at"] and summary["started_at"] != "2026-11-21T01:00:00Z"
    log = (manifest.output_dir / "nst.log").read_text()
    assert "received SIGTERM while planning: nothing rendered" in log
    assert log.rstrip().endswith("run ended: exit code 143 (stopped by SIGTERM)"), log


def test_a_signal_while_the_devices_are_looked_up_stops_before_any_worker_starts(tmp_path, monkeypatch):
    manifest = load_manifest(_manifest(tmp_path))
    _an_earlier_run_that_ended_well(manifest)
    looked_up = devices.resolve_devices
    started = []

    def signalled_while_looking(*args):
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, to the handler the run installed
        return looked_up(*args)

    def unhandled(signum, frame):  # without the run's handler: fail the test, not end pytest
        raise AssertionError("SIGTERM came before the run's own handling")

    monkeypatch.setattr(devices, "resolve_devices", signalled_while_looking)
    monkeypatch.setattr(LocalExecutor, "_start", lambda self, *args: started.append(args))
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert execute(manifest, RenderOptions(devices=("cpu",), live=False, quiet=True)) == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert started == []  # a worker would only load the weights to be stopped
    summary = _summary(manifest)
    assert (summary["exit_code"], summary["pending"], summary["devices"]) == (143, 2, ["cpu"]), summary
    log = (manifest.output_dir / "nst.log").read_text()
    assert "received SIGTERM, stopping" in log
    assert "finished: 0 rendered, 0 failed; the next run renders 2 unfinished jobs" in log
    assert log.rstrip().endswith("run ended: exit code 143 (stopped by SIGTERM)"), log


def test_sigterm_soon_after_the_start_still_ends_the_run_in_its_files(tmp_path):
    # The real command with the default devices: the signal lands while the
    # devices are looked up or soon after, wherever it lands the files must say so.
    manifest = _manifest(tmp_path, iterations=100_000)
    out = tmp_path / "out"
    process = start(manifest, log_name="first")
    try:
        wait_for(lambda: "to render" in (out / "nst.log").read_text() if (out / "nst.log").exists() else False,
                 what="the plan's line", process=process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 143, (tmp_path / "first.txt").read_text()
    finally:
        if process.poll() is None:
            process.kill()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 143 and summary["done"] == 0, summary
    assert (out / "nst.log").read_text().rstrip().endswith("run ended: exit code 143 (stopped by SIGTERM)")
