"""`nst render` killed outright (kill -9, a pulled plug on the submitting
machine) leaves its tasks running on the cluster with nobody to take their
results. Each stops within seconds instead of rendering on, for nothing, and
holding its worker from the next run's tasks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from dask_helpers import FREE_DASHBOARD_PORT

from nst_engine.settings import RenderSettings
from pipeline.cluster_task import TaskChannel, render_on_cluster
from pipeline.jobs import RenderJob, WorkerOptions, job_identity

distributed = pytest.importorskip("distributed")

IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"


def _long_job() -> tuple[RenderJob, dict[str, bytes]]:
    """Minutes of work at 32 px: the task can only end early by stopping."""
    content, style = str(IMAGES / "content" / "chelsea.jpg"), str(IMAGES / "style" / "starry_night.jpg")
    settings = RenderSettings(size=32, iterations=100_000)
    job_id, digests = job_identity(content, (style,), settings)
    job = RenderJob(job_id=job_id, content=content, styles=(style,), settings=settings,
                    output_name=f"chelsea--starry_night-{job_id}.png", content_label="chelsea",
                    style_label="starry_night", digests=digests)
    return job, {path: Path(path).read_bytes() for path in (content, style)}


def test_a_task_whose_client_is_gone_stops_within_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    job, inputs = _long_job()
    channel = TaskChannel("orphan")
    rendering = threading.Event()
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        (worker,) = cluster.workers.values()
        client = distributed.Client(cluster.scheduler_address, set_as_default=False)
        client.subscribe_topic(channel.progress_topic, lambda event: rendering.set())
        future = client.submit(render_on_cluster, [job], WorkerOptions(str(tmp_path / "out")), inputs, None, channel,
                      pure=False)
        assert rendering.wait(120), "the task never reported an iteration"
        assert worker.state.executing_count == 1 and not future.done()
        client.close()  # as the connection of a killed `nst render` closes
        gone = time.monotonic()
        while worker.state.executing_count and time.monotonic() - gone < 60:
            time.sleep(0.1)
        stopped_after = time.monotonic() - gone
    assert stopped_after < 10, f"the orphaned task rendered on for {stopped_after:.0f} s"
