"""Someone pulls the plug halfway through the night: every process of the run
dies at once (SIGKILL to the whole group, so nothing gets to clean up), and the
next run finishes only what is left."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import explain, nst, read_sheet
from process_helpers import (
    decodes,
    done_counts,
    leftovers,
    output_pngs,
    run,
    sidecars,
    start,
    wait_for,
    write_manifest,
)

from pipeline.lock import remove_dead_runs_temp_files
from pipeline.manifest import load_manifest
from pipeline.outputs import output_is_complete

CONTENTS = ["chelsea"]
STYLES = ["starry_night", "night_cafe", "cafe_terrace"]


def _checkpoints(out):
    folder = out / ".checkpoints"
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def _complete(out, jobs) -> set[str]:
    """Jobs whose output the next run will count as done (its own test)."""
    return {job.job_id for job in jobs if output_is_complete(out, job)}


def _mid_job(out, jobs) -> bool:
    """A job finished and the next one has checkpointed: the moment to pull the plug."""
    complete = _complete(out, jobs)
    return bool(complete) and bool({path.stem for path in _checkpoints(out)} - complete)


@pytest.mark.slow
def test_a_run_killed_outright_is_finished_by_the_next_without_redoing_work(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, CONTENTS, STYLES,
                              settings={"size": 32, "iterations": 150}, run={"checkpoint_every": 5})
    jobs = load_manifest(manifest).jobs
    out = gallery_dir.parent / "out"
    # One worker, so jobs run one after another and a job that has just
    # checkpointed is ~145 iterations from its end when the kill lands. Its own
    # session, so one killpg reaches the parent and its worker, as a power cut would.
    process = start(manifest, "--devices", "cpu", log_name="first", preexec_fn=os.setsid)
    try:
        wait_for(lambda: _mid_job(out, jobs), timeout=240,
                 what="a finished job and the next one's checkpoint", process=process)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finished_before = _complete(out, jobs)
    assert 0 < len(finished_before) < len(jobs), "the kill should land mid-gallery"
    assert {path.stem for path in _checkpoints(out)} - finished_before
    # The run never wrote its end, but said at its start which manifest it
    # renders: `nst report` lays out the whole gallery, not just what finished.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["manifest"] == str(manifest) and summary["exit_code"] is None, summary
    reported = nst("report", str(out))
    assert reported.returncode == 0 and "the last run's manifest" in reported.stdout, explain(reported)
    statuses = Counter(card["status"] for card in read_sheet(out).cards)
    assert statuses == {"done": len(finished_before), "pending": len(jobs) - len(finished_before)}, statuses
    # What a kill in the middle of a write leaves (the names _write_atomic and
    # save_checkpoint use); planted, since the kill above lands in one only
    # sometimes (checkpoints every 5 iterations: CI once saw it leave one).
    left_by_the_kill = leftovers(out)
    half_written = [out / ".chelsea--x-0123456789ab.png.k2j4.tmp", out / "thumbs" / ".0123456789ab.jpg.x1.tmp",
                    out / ".checkpoints" / ".0123456789ab.pt.4242.tmp"]
    for path in half_written:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\x89PNG half")

    code, printed = run(manifest, "--devices", "cpu", log_name="second", timeout=240)
    assert code == 0, printed
    cars = sidecars(out)
    assert len(cars) == len(jobs) and len(output_pngs(out)) == len(jobs)
    assert all(decodes(png) for png in output_pngs(out))
    # Nothing finished before the cut rendered again, and something resumed from its checkpoint.
    assert done_counts(out) == {job_id: 1 for job_id in cars}
    assert f"{len(finished_before)} already done, {len(jobs) - len(finished_before)} to render" in printed
    assert any(car["resumed_from_iteration"] > 0 for job_id, car in cars.items() if job_id not in finished_before)
    assert _checkpoints(out) == []
    assert leftovers(out) == []
    removed = len(half_written) + len(left_by_the_kill)
    assert f"removed {removed} half-written temp files left by an earlier run" in printed, (left_by_the_kill, printed)
    sheet = (out / "index.html").read_text(encoding="utf-8")
    assert all(car["output"] in sheet for car in cars.values())
    # The killed run wrote no last line; this one says it never ended, in the
    # log and in cron's mail. Each run's start and end marks are the log's alone.
    assert "the last run here (gallery.yaml, started " in printed and " never ended: it was killed" in printed
    log = (out / "nst.log").read_text(encoding="utf-8")
    assert log.count("run started: nst render ") == 2 and "--devices cpu (pid " in log, log
    assert log.count("run ended: ") == 1 and log.rstrip().endswith("run ended: exit code 0 (every job asked for is done)"), log
    assert "run started:" not in printed


def test_only_our_own_temp_files_in_our_own_folders_are_removed(tmp_path):
    ours = [tmp_path / ".a.png.x.tmp", tmp_path / "thumbs" / "sources" / ".b.jpg.y.tmp"]
    kept = [tmp_path / "notes.tmp", tmp_path / ".hidden.txt", tmp_path / "mine" / ".c.png.z.tmp"]
    for path in ours + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tmp_path / ".checkpoints" / ".d.pt.1.tmp").mkdir(parents=True)  # not a file: left alone
    assert remove_dead_runs_temp_files(tmp_path) == 2
    assert [p.exists() for p in ours] == [False, False]
    assert all(p.exists() for p in kept)
    assert remove_dead_runs_temp_files(tmp_path / "missing") == 0


def test_a_name_templates_subfolders_are_swept_too(tmp_path):
    # name: "{style}/{content}" writes each image and sidecar through a temp file beside it.
    ours = [tmp_path / "starry_night" / ".chelsea-0123456789ab.png.k2j4.tmp",
            tmp_path / "a" / "b" / ".chelsea-0123456789ab.json.x1.tmp"]
    kept = tmp_path / "mine" / ".c.png.z.tmp"  # a folder no output name uses
    for path in [*ours, kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    folders = [Path("starry_night"), Path("a/b"), Path(".")]
    assert remove_dead_runs_temp_files(tmp_path, folders) == 2
    assert [p.exists() for p in ours] == [False, False] and kept.exists()


def test_a_run_sweeps_the_temp_files_a_killed_run_left_in_its_name_templates_subfolders(gallery_dir):
    images = gallery_dir.parent / "images"
    manifest = gallery_dir.parent / "gallery.yaml"
    manifest.write_text(json.dumps({  # JSON is YAML
        "output": "out", "settings": {"size": 32, "iterations": 2},
        "jobs": [{"contents": [str(images / "content" / "chelsea.jpg")],
                  "styles": [str(images / "style" / "starry_night.jpg")], "name": "{style}/{content}"}]}))
    half_written = gallery_dir.parent / "out" / "starry_night" / ".chelsea-0123456789ab.png.k2j4.tmp"
    half_written.parent.mkdir(parents=True)
    half_written.write_bytes(b"\x89PNG half")
    code, printed = run(manifest, "--devices", "cpu")
    assert code == 0, printed
    assert "removed 1 half-written temp file left by an earlier run" in printed, printed
    assert not half_written.exists()
    assert sorted(p.suffix for p in half_written.parent.iterdir()) == [".json", ".png"]  # the render went on
