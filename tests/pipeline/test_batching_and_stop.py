"""Two paths the other process tests do not reach: a worker rendering a real
batch (on a CPU only when the manifest asks for one), and a second signal that
stops a run at once instead of waiting for the running jobs."""

from __future__ import annotations

import json
import signal
import time

import psutil
import pytest
from process_helpers import (
    decodes,
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

from pipeline.stop_signals import SAME_SIGNAL_SECONDS

pytestmark = pytest.mark.slow

STYLES = ["starry_night", "night_cafe", "cafe_terrace"]


def test_run_batch_size_renders_one_content_with_its_styles_as_one_batch(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], STYLES,
                              settings={"size": 40, "iterations": 4, "precision": "fp32"},
                              run={"batch_size": 2})
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu")
    assert code == 0, printed
    sizes = sorted(card["stats"]["batch_size"] for card in sidecars(out).values())
    assert sizes == [1, 2, 2], printed  # capped at 2: one batch of two, then the third alone
    starts = [line for line in log_text(out).splitlines() if " starts " in line]
    assert len(starts) == 2 and starts[0].count(", ") == 1  # one task named two jobs


def test_without_batch_size_a_cpu_worker_renders_one_image_at_a_time(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], STYLES[:2],
                              settings={"size": 40, "iterations": 3})
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu")
    assert code == 0, printed
    assert [card["stats"]["batch_size"] for card in sidecars(out).values()] == [1, 1]


def test_two_workers_split_one_contents_jobs_instead_of_one_taking_all(gallery_dir):
    # Four jobs that could be one batch of 4. With two workers the first to ask
    # takes its fair share, 2 of 4; the other takes 1 of the 2 left, and the
    # last goes to whichever comes back first. Neither worker sits idle.
    # 80 iterations: the batch of 2 took 10 s on an AVX2-only CPU, time enough
    # for the second worker (ready in the same second as the first) to ask.
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], STYLES + ["hubble_deep_field"],
                              settings={"size": 48, "iterations": 80, "precision": "fp32"},
                              run={"batch_size": 4})
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu*2")
    assert code == 0, printed
    cards = sidecars(out).values()
    assert sorted(card["stats"]["batch_size"] for card in cards) == [1, 1, 2, 2], printed
    assert len({card["worker_pid"] for card in cards}) == 2, printed


def test_a_batch_past_its_timeout_is_stopped_with_one_allowance_per_job(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], STYLES[:2],
                              settings={"size": 32, "iterations": 100_000}, run={"batch_size": 2})
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu", "--job-timeout", "2")
    assert code == 1, printed
    errors = [record["error"] for record in results(out)]
    assert errors == ["timed out after 4 s on cpu (a batch of 2 jobs)"] * 2, printed


def test_a_second_signal_stops_at_once(gallery_dir):
    # Jobs long enough that the graceful path (wait for a checkpoint) would take a while.
    manifest = write_manifest(gallery_dir.parent, ["chelsea", "neuschwanstein"], STYLES[:1],
                              settings={"size": 64, "iterations": 20000}, run={"checkpoint_every": 50000})
    out = gallery_dir.parent / "out"
    process = start(manifest, "--devices", "cpu*2", log_name="twice")
    try:
        wait_for(lambda: log_text(out).count(" starts ") >= 2, what="both workers busy", process=process)
        # The render workers only: multiprocessing's resource tracker is a child
        # too, and it may outlive the parent by a moment by design.
        workers = [child for child in psutil.Process(process.pid).children()
                   if "resource_tracker" not in " ".join(child.cmdline())]
        assert len(workers) == 2
        # Frozen workers cannot finish the graceful stop (a checkpoint at their
        # next iteration takes well under a second here), so the run is
        # certainly still stopping when the second signal comes.
        for worker in workers:
            worker.suspend()
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: "received SIGTERM, stopping:" in log_text(out), what="the first signal", process=process)
        time.sleep(2 * SAME_SIGNAL_SECONDS)  # later than this is a second request, not the first one twice
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = process.wait(30)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    printed = (gallery_dir.parent / "twice.txt").read_text()
    assert code == 143, printed
    assert stopped_in < 15, printed  # not the 30 s grace, let alone 20000 iterations
    assert "stopping now" in printed
    _, still_running = psutil.wait_procs(workers, timeout=5)
    assert still_running == []  # the parent killed its workers before it exited
    assert leftovers(out) == [] and all(decodes(p) for p in output_pngs(out))
    # Both jobs are on record as interrupted, so the sheet and the summary count them.
    assert sorted((r["status"], r["error"]) for r in results(out)) == [
        ("interrupted", "interrupted: stopped at once by a second signal; resumes next run")] * 2, printed
    assert json.loads((out / "summary.json").read_text())["interrupted_this_run"] == 2
