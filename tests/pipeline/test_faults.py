"""What a night can throw at a run: SIGTERM, a second cron job, out of memory, a job
that never ends. Each test runs `nst render` as a real subprocess on tiny images."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
from file_limits import limited_child
from process_helpers import (
    decodes,
    done_counts,
    leftovers,
    log_text,
    output_pngs,
    results,
    run,
    sidecars,
    start,
    wait_for,
    write_manifest,
)

from pipeline.lock import LOCK_NAME, OWNER_NAME

pytestmark = pytest.mark.slow

STYLES = ["starry_night", "night_cafe"]


def _checkpoints(out):
    folder = out / ".checkpoints"
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def _no_half_written_files(out):
    assert leftovers(out) == []
    for png in output_pngs(out):
        assert decodes(png), png
    for thumb in (out / "thumbs").rglob("*.jpg"):
        assert decodes(thumb), thumb


# SIGHUP: the SSH session of a run started by hand closed. The worker gets it
# too (the whole process group does), and must leave the decision to the parent.
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_checkpoints_and_the_next_run_resumes_without_redoing_work(gallery_dir, signum, code):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], STYLES,
                              settings={"size": 48, "iterations": 80}, run={"checkpoint_every": 5})
    out = gallery_dir.parent / "out"
    process = start(manifest, "--devices", "cpu", log_name="first", preexec_fn=os.setsid)  # its own group
    try:
        wait_for(lambda: _checkpoints(out), what="a checkpoint", process=process)
        if signum == signal.SIGHUP:
            os.killpg(process.pid, signum)  # as a closing terminal does: the workers get it too
        else:
            process.send_signal(signum)
        first = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    printed = (gallery_dir.parent / "first.txt").read_text()
    assert first == code, printed
    assert f"received {signal.Signals(signum).name}" in printed
    # A warning, so that -q (cron's mail) still says what is left.
    assert "WARNING finished: 0 rendered, 0 failed; the next run renders 2 unfinished jobs" in printed, printed
    interrupted = [r for r in results(out) if r["status"] == "interrupted"]
    assert len(interrupted) == 1, results(out)  # a cancel is not a failure
    assert [r for r in results(out) if r["status"] == "failed"] == []
    assert _checkpoints(out), "the interrupted job should have left its checkpoint"
    _no_half_written_files(out)
    if signum == signal.SIGHUP:
        return  # it left what SIGTERM leaves (above); the resume from that is SIGTERM's case below

    second, printed = run(manifest, "--devices", "cpu", log_name="second")
    assert second == 0, printed
    cars = sidecars(out)
    assert len(cars) == 2 and len(output_pngs(out)) == 2
    assert done_counts(out) == {job_id: 1 for job_id in cars}  # no job rendered twice
    resumed = cars[interrupted[0]["job_id"]]
    assert resumed["resumed_from_iteration"] > 0
    # Its time is the whole render's, the part before the signal included.
    assert 0 < resumed["stats"]["seconds_before_resume"] < resumed["stats"]["seconds"]
    assert f"(resumed at iteration {resumed['resumed_from_iteration']})" in printed  # the log says so too
    assert all(car["resumed_from_iteration"] == 0 for job_id, car in cars.items()
               if job_id != resumed["job_id"])
    assert _checkpoints(out) == []  # deleted once each image was safely written
    _no_half_written_files(out)


def test_a_second_run_on_the_same_folder_is_refused_or_waits(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["starry_night"],
                              settings={"size": 48, "iterations": 80})
    out = gallery_dir.parent / "out"
    first = start(manifest, "--devices", "cpu", log_name="first")
    waiting = quiet = None
    try:
        wait_for(lambda: (out / OWNER_NAME).exists(), what="the first run to lock", process=first)
        first.send_signal(signal.SIGSTOP)  # it holds the folder, and cannot finish meanwhile
        try:
            refused, printed = run(manifest, "--devices", "cpu", log_name="refused")
        finally:
            first.send_signal(signal.SIGCONT)
        assert refused == 75, printed
        assert str(out) in printed and "another nst render" in printed and "--wait" in printed
        assert "Traceback" not in printed
        assert first.poll() is None, "the first run ended too soon for this test to mean anything"
        waiting = start(manifest, "--devices", "cpu", "--wait", log_name="waiting")
        # From cron: -q prints nothing on a night with nothing wrong, waiting included.
        quiet = start(manifest, "--devices", "cpu", "--wait", "-q", log_name="quiet")
        assert first.wait(150) == 0
        assert waiting.wait(60) == 0, (gallery_dir.parent / "waiting.txt").read_text()
        assert quiet.wait(60) == 0, (gallery_dir.parent / "quiet.txt").read_text()
    finally:
        for process in (first, waiting, quiet):
            if process is not None and process.poll() is None:
                process.kill()
    waited = (gallery_dir.parent / "waiting.txt").read_text()
    assert "is busy" in waited and "waiting for it" in waited and "nothing to render" in waited
    assert (gallery_dir.parent / "quiet.txt").read_text() == ""
    assert list(done_counts(out).values()) == [1]  # rendered by the first run only


def test_a_lock_left_by_a_dead_run_does_not_block(gallery_dir):
    out = gallery_dir.parent / "out"
    # A run that took the lock and was then killed (power cut, OOM killer, kill -9).
    holder = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from pipeline.lock import OutputLock
        lock = OutputLock(Path({str(out)!r}), wait=False)
        lock.__enter__()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    died = subprocess.run([sys.executable, "-c", holder], check=False, timeout=60)
    assert died.returncode == -signal.SIGKILL
    assert (out / LOCK_NAME).exists() and (out / OWNER_NAME).exists()
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["starry_night"],
                              settings={"size": 32, "iterations": 2})
    code, printed = run(manifest, "--devices", "cpu")
    assert code == 0, printed
    assert len(done_counts(out)) == 1
    assert not (out / OWNER_NAME).exists()  # released properly this time


def test_out_of_memory_takes_the_fallback_and_the_job_still_finishes(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], STYLES,
                              settings={"size": 32, "iterations": 3})
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu", NST_TEST_INJECT_OOM="*starry*")
    assert code == 0, printed
    records = {r["output"]: r for r in results(out)}
    assert all(r["status"] == "done" for r in records.values()) and len(records) == 2
    (starry,) = [r for name, r in records.items() if "starry" in name]
    (cafe,) = [r for name, r in records.items() if "starry" not in name]
    assert starry["memory_fallback"] and "lbfgs_history" in starry["memory_fallback"]
    assert cafe["memory_fallback"] is None
    assert sidecars(out)[starry["job_id"]]["memory_fallback"] == starry["memory_fallback"]
    assert "memory fallback" in log_text(out)


def test_a_job_past_its_timeout_is_stopped_and_the_rest_still_render(gallery_dir):
    # Four endless jobs in a row on one worker, then two short ones: each timeout
    # replaces the worker, and the short jobs must still find one.
    endless = {"contents": [str(gallery_dir / "content" / f"{c}.jpg")
                            for c in ("chelsea", "neuschwanstein", "machu_picchu", "cincinnati_bridge")],
               "styles": [str(gallery_dir / "style" / "starry_night.jpg")],
               "settings": {"iterations": 100_000}}
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["night_cafe", "cafe_terrace"],
                              settings={"size": 32, "iterations": 2}, extra_jobs=[endless])
    out = gallery_dir.parent / "out"
    # Four endless jobs: more timeouts than MAX_STARTS_WITHOUT_PROGRESS, which
    # must not give the device up. 12 s: a short job on a fresh worker (which
    # compiles its kernels first) took 0.3 s here, 2.6 s on a busy machine, 4.5 s
    # with three busy loops, and more than 8 s once with two pip installs beside it.
    code, printed = run(manifest, "--devices", "cpu", "--job-timeout", "12")
    assert code == 1, printed
    records = {r["output"]: r for r in results(out)}
    timed_out = {name for name, r in records.items() if r["status"] == "failed"}
    assert timed_out == {name for name in records if "starry" in name} and len(timed_out) == 4
    assert all("timed out after 12 s" in records[name]["error"] for name in timed_out)
    assert sorted(r["status"] for name, r in records.items() if name not in timed_out) == ["done"] * 2
    sheet = (out / "index.html").read_text(encoding="utf-8")
    assert len(re.findall(r'data-status="failed"', sheet)) == 4
    assert sheet.count('class="error">timed out after 12 s') == 4
    assert len(re.findall(r'data-status="done"', sheet)) == 2
    # A timed-out job keeps its last checkpoint: the next run goes on from there.
    assert {p.stem for p in _checkpoints(out)} <= {records[name]["job_id"] for name in timed_out}
    _no_half_written_files(out)


def test_a_full_disk_fails_the_job_it_could_not_save_and_the_next_run_renders_it(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["starry_night"],
                              settings={"size": 128, "iterations": 3})
    out = gallery_dir.parent / "out"
    # The PNG (~40 kB) does not fit; the sheet, the log and results.jsonl do.
    # The style cache's entry (~2.4 MB) does not fit either, and is skipped.
    code, printed = run(manifest, "--devices", "cpu", preexec_fn=limited_child(25_000))
    assert code == 1, printed
    (record,) = results(out)
    assert record["status"] == "failed"
    assert re.fullmatch(r"could not save chelsea--starry_night-\w+\.png: File too large", record["error"]), record
    assert "Traceback" not in printed and "could not save" in (out / "index.html").read_text(encoding="utf-8")
    assert output_pngs(out) == [] and leftovers(out) == []
    code, printed = run(manifest, "--devices", "cpu", log_name="again")
    assert code == 0, printed
    assert done_counts(out) == {record["job_id"]: 1}


def test_a_checkpoint_the_disk_will_not_take_is_skipped_and_the_render_goes_on(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["starry_night"],
                              settings={"size": 128, "iterations": 6}, run={"checkpoint_every": 2})
    out = gallery_dir.parent / "out"
    # A checkpoint of 128×128 pixels is ~200 kB; the PNG (~40 kB) fits.
    code, printed = run(manifest, "--devices", "cpu", preexec_fn=limited_child(100_000))
    assert code == 0, printed
    assert [r["status"] for r in results(out)] == ["done"]
    assert _checkpoints(out) == [] and leftovers(out) == []  # no checkpoint, whole or partial


def test_when_the_last_job_times_out_no_worker_starts_for_nothing(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["starry_night"],
                              settings={"size": 32, "iterations": 100_000})
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu", "--job-timeout", "2")
    assert code == 1, printed
    (record,) = results(out)
    assert "timed out after 2 s" in record["error"]
    assert len(re.findall(r"worker 0 on cpu .* is ready", log_text(out))) == 1, log_text(out)
