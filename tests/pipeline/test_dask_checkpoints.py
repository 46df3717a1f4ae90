"""A Dask task that is stopped or times out sends its checkpoint back, and the
next run's task resumes from it: the cluster's workers cannot see the output
folder, so the checkpoint travels with the result, as the images do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from process_helpers import done_counts, results, sidecars, write_manifest

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob, checkpoint_path
from pipeline.manifest import load_manifest
from pipeline.recorder import Recorder
from pipeline.run import RenderOptions, execute

REPO_IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"
# More than 1.5 s of work at 32 px on a fast CPU (~5 ms an iteration), little
# enough to finish soon when it resumes on a slow, loaded one (~50 ms).
ITERATIONS = 400


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


@pytest.mark.slow
def test_a_cluster_job_that_timed_out_resumes_from_its_checkpoint_next_run(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    import torch

    shutil.copytree(REPO_IMAGES, tmp_path / "images")
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    manifest = load_manifest(write_manifest(tmp_path, ["chelsea"], ["starry_night"],
                                            settings={"size": 32, "iterations": ITERATIONS}))
    out = tmp_path / "out"
    (job,) = manifest.jobs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the in-process cluster renders in this process
    try:
        with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                      dashboard_address=None) as cluster:
            address = cluster.scheduler_address
            first = execute(manifest, RenderOptions(cluster=address, job_timeout=1.5, live=False, quiet=True))
            (timed_out,) = results(out)
            assert first == 1 and timed_out["status"] == "failed", timed_out
            assert checkpoint_path(out, job.job_id).is_file(), "the task's checkpoint should be kept here"

            second = execute(manifest, RenderOptions(cluster=address, live=False, quiet=True))
    finally:
        torch.set_num_threads(threads)
    assert second == 0, results(out)
    car = sidecars(out)[job.job_id]
    assert 0 < car["resumed_from_iteration"] < ITERATIONS
    assert car["stats"]["iterations"] == ITERATIONS
    assert done_counts(out) == {job.job_id: 1}
    assert not checkpoint_path(out, job.job_id).exists()  # used up once the image was safe
