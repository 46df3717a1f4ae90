"""While a run works, the sheet shows which jobs are rendering, where and since
when; once it ends, no card says so. The state is the sheet's only: results.jsonl
records outcomes."""

from __future__ import annotations

import json
import subprocess
import time

from cli_helpers import SAMPLES, nst_command, nst_env, read_sheet, write_manifest
from test_job_state import _done

from pipeline.manifest import load_manifest
from pipeline.recorder import Recorder
from pipeline.reporter import RELOAD_SECONDS


def _sheet_written(recorder: Recorder) -> None:
    """As the run's idle loop does: catch up until the pause after the last
    rewrite is over. The pause scales with how long that rewrite took, so on a
    loaded machine it can outlast any fixed sleep."""
    deadline = time.monotonic() + 60
    while recorder.sheet_is_stale and time.monotonic() < deadline:
        time.sleep(0.05)
        recorder.catch_up()
    assert not recorder.sheet_is_stale


def _two_jobs(tmp_path, **settings):
    return write_manifest(tmp_path / "m.yaml", [SAMPLES / "content" / "chelsea.jpg",
                                                SAMPLES / "content" / "neuschwanstein.jpg"],
                          [SAMPLES / "style" / "starry_night.jpg"], settings=settings or None)


def test_a_started_job_shows_as_rendering_on_its_device_until_its_result(tmp_path):
    manifest = load_manifest(_two_jobs(tmp_path))
    first, second = manifest.jobs
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    recorder.mark_queued(list(manifest.jobs))
    recorder.note_worker(3, "cuda:3")
    recorder.mark_started(3, [first])
    _sheet_written(recorder)
    html = (manifest.output_dir / "index.html").read_text(encoding="utf-8")
    assert {c["job_id"]: c["status"] for c in read_sheet(manifest.output_dir).cards} == {
        first.job_id: "rendering", second.job_id: "pending"}
    assert '>rendering</strong><strong class="once-gone">stopped</strong><span>on cuda:3 since ' in html
    assert '<b>1</b> <span class="while-live">rendering</span>' in html
    # A run killed mid-job leaves this page behind: it says how to bring it up to date.
    assert "If that run has stopped, <code>nst report</code>" in html
    # A tab left open follows the run; a finished page stays still.
    assert f'<meta http-equiv="refresh" content="{RELOAD_SECONDS}">' in html and "reloads itself every minute" in html
    recorder.record(first, _done(first))
    _sheet_written(recorder)
    assert {c["status"] for c in read_sheet(manifest.output_dir).cards} == {"done", "pending"}
    finished = (manifest.output_dir / "index.html").read_text(encoding="utf-8")
    assert "nst report" not in finished and "refresh" not in finished
    assert not (manifest.output_dir / "results.jsonl").read_text().count("rendering")


def test_a_forced_rerender_of_a_done_job_keeps_showing_its_image_marked_as_under_way(tmp_path):
    manifest = load_manifest(_two_jobs(tmp_path))
    first, second = manifest.jobs
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    for job in manifest.jobs:
        recorder.record(job, _done(job))
    recorder.mark_queued(list(manifest.jobs), forced=True)
    recorder.note_worker(0, "cuda:0")
    recorder.mark_started(0, [first])
    _sheet_written(recorder)
    sheet = (manifest.output_dir / "index.html").read_text(encoding="utf-8")
    assert {c["status"] for c in read_sheet(manifest.output_dir).cards} == {"done"}
    # Under way all the same: the card says so, and the page says a run is at work and reloads.
    assert sheet.count("<summary>rendering again on cuda:0 since ") == 1, sheet
    assert "written while a run was rendering" in sheet and 'http-equiv="refresh"' in sheet
    recorder.record(first, _done(first))
    _sheet_written(recorder)
    sheet = (manifest.output_dir / "index.html").read_text(encoding="utf-8")
    assert "rendering again" not in sheet and "refresh" not in sheet
    recorder.mark_started(0, [second])  # and no result ever comes: the run's end clears the mark
    recorder.write_summary(130, ["cuda:0"], skipped=0)
    sheet = (manifest.output_dir / "index.html").read_text(encoding="utf-8")
    assert "rendering again" not in sheet and "refresh" not in sheet
    assert {c["status"] for c in read_sheet(manifest.output_dir).cards} == {"done"}


def test_the_summary_never_leaves_a_card_rendering(tmp_path):
    manifest = load_manifest(_two_jobs(tmp_path))
    first, _ = manifest.jobs
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    recorder.mark_started(0, [first])  # and no result ever comes
    summary = recorder.write_summary(1, ["cpu"], skipped=0)
    assert summary["pending"] == 2
    assert {c["status"] for c in read_sheet(manifest.output_dir).cards} == {"pending"}


def test_a_real_run_shows_its_job_rendering_on_the_sheet(tmp_path):
    manifest = _two_jobs(tmp_path, size=64, iterations=60)
    out = tmp_path / "out"
    run = subprocess.Popen(nst_command("render", manifest, "--devices", "cpu"), cwd=tmp_path, env=nst_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            try:
                html = (out / "index.html").read_text(encoding="utf-8")
            except OSError:
                html = ""
            if '>rendering</strong><strong class="once-gone">stopped</strong><span>on cpu since ' in html:
                seen.add("rendering")
            time.sleep(0.1)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, stderr
    assert seen == {"rendering"}, "the sheet never showed a job rendering"
    assert {c["status"] for c in read_sheet(out).cards} == {"done"}
    assert json.loads((out / "summary.json").read_text())["done"] == 2


def test_while_a_run_lives_it_rewrites_the_sheet_every_few_minutes_even_with_no_news(tmp_path, monkeypatch):
    # An open tab takes a page much older than the heartbeat for one a killed run left
    # (test_sheet_left_by_a_killed_run), so a long job must not leave the page that old.
    manifest = load_manifest(_two_jobs(tmp_path))
    first, _ = manifest.jobs
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    recorder.mark_queued(list(manifest.jobs))
    recorder.mark_started(0, [first])
    _sheet_written(recorder)
    sheet = manifest.output_dir / "index.html"
    sheet.unlink()
    recorder.catch_up()  # just written, and no result since: nothing to do
    assert not sheet.exists()
    monkeypatch.setattr("pipeline.recorder.HEARTBEAT_SECONDS", 0.0)  # as if minutes had gone by
    deadline = time.monotonic() + 60
    while not sheet.exists() and time.monotonic() < deadline:  # after the pause that follows a rewrite
        recorder.catch_up()
        time.sleep(0.05)
    assert {c["status"] for c in read_sheet(manifest.output_dir).cards} == {"rendering", "pending"}


def test_summary_json_keeps_up_with_the_sheet_while_the_run_lives(tmp_path):
    # A run killed outright never writes its end: its summary.json must not still
    # hold the counts the run started with (0 done) after hours of renders.
    manifest = load_manifest(_two_jobs(tmp_path))
    first, second = manifest.jobs
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    recorder.mark_queued(list(manifest.jobs))
    recorder.write_start(["cpu"], skipped=0)
    summary_file = manifest.output_dir / "summary.json"
    started = json.loads(summary_file.read_text())
    assert (started["done"], started["pending"], started["exit_code"]) == (0, 2, None)
    recorder.record(first, _done(first))
    _sheet_written(recorder)
    midway = json.loads(summary_file.read_text())
    assert (midway["done"], midway["pending"], midway["rendered"]) == (1, 1, 1)
    assert midway["exit_code"] is None and midway["finished_at"] is None
    assert midway["started_at"] == started["started_at"] and midway["devices"] == ["cpu"]
    assert midway["updated_at"] >= started["updated_at"]
    ended = recorder.write_summary(0, ["cpu"], skipped=0)
    assert ended["exit_code"] == 0 and json.loads(summary_file.read_text())["exit_code"] == 0
