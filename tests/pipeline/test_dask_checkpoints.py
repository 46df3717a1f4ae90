"""A Dask task that is stopped or times out sends its checkpoint back, and the
next run's task resumes from it: the cluster's workers cannot see the output
folder, so the checkpoint travels with the result, as the images do."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from dask_helpers import FREE_DASHBOARD_PORT
from process_helpers import done_counts, results, sidecars, write_manifest

from nst_engine.settings import RenderSettings
from nst_engine.types import Checkpoint
from pipeline.display import ProgressDisplay
from pipeline.jobs import RenderJob, checkpoint_path
from pipeline.manifest import load_manifest
from pipeline.recorder import Recorder
from pipeline.run import RenderOptions, execute

REPO_IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"
# A second of work at 32 px on a fast CPU (~5 ms an iteration), little enough
# to finish soon when it resumes on a slow, loaded one (~70 ms on one thread of
# an AVX2-only CPU, up to three times that beside the rest of the suite). The
# test reads the stop at every check rather than once a second, so it lands mid-job.
ITERATIONS = 200


def _job() -> RenderJob:
    return RenderJob(job_id="abc123", content="/x/cat.jpg", styles=("/x/starry.jpg",),
                     settings=RenderSettings(size=64, iterations=5),
                     output_name="cat--starry-abc123.png", content_label="cat", style_label="starry")


def test_the_recorder_keeps_what_a_task_says_of_its_checkpoint(tmp_path):
    job = _job()
    recorder = Recorder(tmp_path, [job], title="t", manifest="m.yaml")
    path = checkpoint_path(tmp_path, job.job_id)
    stopped = recorder.record(job, {"job_id": job.job_id, "status": "interrupted", "checkpoint": b"pixels"})
    assert path.read_bytes() == b"pixels" and "checkpoint" not in stopped
    assert "pixels" not in (tmp_path / "results.jsonl").read_text()
    recorder.record(job, {"job_id": job.job_id, "status": "interrupted"})  # queued, never ran: keep it
    assert path.read_bytes() == b"pixels"
    recorder.record(job, {"job_id": job.job_id, "status": "failed", "error": "diverged", "checkpoint": b""})
    assert not path.exists()  # the task dropped it: it would blow up again


@pytest.fixture
def one_job_on_a_cluster(tmp_path, monkeypatch):
    """A manifest of one job, and an in-process Dask cluster (torch on one thread,
    as the cluster renders in this process)."""
    distributed = pytest.importorskip("distributed")
    import torch

    shutil.copytree(REPO_IMAGES, tmp_path / "images")
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    manifest = load_manifest(write_manifest(tmp_path, ["chelsea"], ["starry_night"],
                                            settings={"size": 32, "iterations": ITERATIONS}))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
            yield manifest, cluster.scheduler_address
    finally:
        torch.set_num_threads(threads)


def _checkpoint_iteration(path: Path) -> int:
    return Checkpoint.from_bytes(path.read_bytes()).iteration


@pytest.mark.slow
def test_a_cluster_job_stopped_by_ctrl_c_resumes_from_its_checkpoint_next_run(one_job_on_a_cluster, monkeypatch):
    manifest, address = one_job_on_a_cluster
    (job,) = manifest.jobs
    out = manifest.output_dir
    monkeypatch.setattr("pipeline.cluster_task.PROGRESS_INTERVAL", 0.0)  # a note every 10 iterations
    monkeypatch.setattr("pipeline.cluster_task._StopCheck.INTERVAL", 0.0)  # the stop is read at once
    real_progress, pressed = ProgressDisplay.on_progress, []

    def ctrl_c_after_ten_iterations(display, slot, event):
        real_progress(display, slot, event)
        if event["done"] >= 10 and not pressed:  # once: a second Ctrl-C means "stop now"
            pressed.append(event["done"])
            os.kill(os.getpid(), signal.SIGINT)  # in the run's main thread, where its handler hears it

    monkeypatch.setattr(ProgressDisplay, "on_progress", ctrl_c_after_ten_iterations)
    first = execute(manifest, RenderOptions(cluster=address, live=False, quiet=True))
    assert first == 130 and [r["status"] for r in results(out)] == ["interrupted"], results(out)
    stopped_at = _checkpoint_iteration(checkpoint_path(out, job.job_id))  # kept here, sent by the task
    assert 10 <= stopped_at < ITERATIONS

    monkeypatch.setattr(ProgressDisplay, "on_progress", real_progress)
    second = execute(manifest, RenderOptions(cluster=address, live=False, quiet=True))
    assert second == 0, results(out)
    car = sidecars(out)[job.job_id]
    assert car["resumed_from_iteration"] == stopped_at and car["stats"]["iterations"] == ITERATIONS
    assert done_counts(out) == {job.job_id: 1}
    assert not checkpoint_path(out, job.job_id).exists()  # used up once the image was safe


@pytest.mark.slow
def test_a_cluster_job_past_its_timeout_sends_back_its_checkpoint(one_job_on_a_cluster):
    manifest, address = one_job_on_a_cluster
    (job,) = manifest.jobs
    first = execute(manifest, RenderOptions(cluster=address, job_timeout=1.5, live=False, quiet=True))
    (timed_out,) = results(manifest.output_dir)
    assert first == 1 and timed_out["status"] == "failed", timed_out
    # As a local worker past its timeout does: the job goes on from there next run.
    assert _checkpoint_iteration(checkpoint_path(manifest.output_dir, job.job_id)) < ITERATIONS
