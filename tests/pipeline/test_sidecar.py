"""What a sidecar holds: what reproducing the render needs, each fact once.
A real render (32 px, 2 iterations) through the worker's seam and the Recorder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from nst_engine.cpu_model import cpu_model_name
from nst_engine.settings import RenderSettings
from pipeline import worker
from pipeline.jobs import RenderJob, WorkerOptions, job_identity
from pipeline.recorder import Recorder

IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"


@pytest.fixture
def one_thread_worker(tmp_path, monkeypatch):
    """The worker's own engine, told to use 1 thread as a `cpu*2` run on 2 cores would be."""
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    options = WorkerOptions(str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), threads=1)
    threads = torch.get_num_threads()
    yield worker.build_engine("cpu", options), options
    torch.set_num_threads(threads)  # build_engine set it for this whole process


def _tiny_job() -> RenderJob:
    content, style = str(IMAGES / "content" / "chelsea.jpg"), str(IMAGES / "style" / "starry_night.jpg")
    settings = RenderSettings(size=32, iterations=2)
    job_id, digests = job_identity(content, (style,), settings)
    return RenderJob(job_id=job_id, content=content, styles=(style,), settings=settings,
                     output_name=f"chelsea--starry_night-{job_id}.png",
                     content_label="chelsea", style_label="starry_night", digests=digests)


def _rendered_sidecar(engine, options: WorkerOptions) -> dict:
    job = _tiny_job()
    (result,) = worker.render_task(engine, [job], options)
    assert result["status"] == "done", result
    output_dir = Path(options.output_dir)
    Recorder(output_dir, [job], title="t", manifest="m.yaml").record(job, result)
    return json.loads((output_dir / job.sidecar_name).read_text())


def test_a_sidecar_names_the_cpu_model_and_the_torch_threads(one_thread_worker):
    sidecar = _rendered_sidecar(*one_thread_worker)
    assert sidecar["device"] == "cpu"
    assert sidecar["device_name"] == sidecar["stats"]["device_name"] == cpu_model_name()
    assert sidecar["stats"]["torch_threads"] == 1


def test_a_sidecar_says_losses_cache_and_seconds_once(one_thread_worker):
    sidecar = _rendered_sidecar(*one_thread_worker)
    assert not {"losses", "cache", "timings"} & set(sidecar)  # once copied here from stats
    stats = sidecar["stats"]
    assert "timings" not in stats  # an engine field that nothing ever filled
    assert {"total", "content", "style"} <= set(stats["losses"]) and set(stats["cache"]) == {"hits", "misses"}
    assert stats["seconds"] > 0 and stats["wall_seconds"] >= stats["seconds"]


def test_a_sidecar_names_the_bytes_of_each_input_it_rendered(one_thread_worker):
    # A photo replaced under its own name leaves sidecars naming one path for two pictures.
    sidecar = _rendered_sidecar(*one_thread_worker)
    assert sidecar["input_sha256"] == {
        path: hashlib.sha256(Path(path).read_bytes()).hexdigest()
        for path in (sidecar["content"], *sidecar["styles"])}


def test_a_cluster_render_names_its_worker_and_machine_in_the_sidecar_and_on_the_sheet(one_thread_worker):
    """A Dask task's record says where it ran (cluster_task._this_worker): "cuda:0"
    is on every machine. Here a local render's record is given those fields."""
    engine, options = one_thread_worker
    job = _tiny_job()
    (result,) = worker.render_task(engine, [job], options)
    result.update(host="gpu-node-3", dask_worker="tcp://10.0.0.7:40331")
    output_dir = Path(options.output_dir)
    Recorder(output_dir, [job], title="t", manifest="m.yaml").record(job, result)
    sidecar = json.loads((output_dir / job.sidecar_name).read_text())
    assert (sidecar["host"], sidecar["dask_worker"]) == ("gpu-node-3", "tcp://10.0.0.7:40331")
    # A later run (or `nst report`) that rebuilds the sheet from the sidecar still says it.
    (output_dir / "results.jsonl").unlink()
    reconcile_and_write = Recorder(output_dir, [job], title="t", manifest="m.yaml")
    reconcile_and_write.write_sheet(now=True)
    assert "<dt>Dask worker</dt><dd>tcp://10.0.0.7:40331 on gpu-node-3</dd>" in (output_dir / "index.html").read_text()


def test_a_local_render_names_this_machine_and_no_dask_worker(one_thread_worker):
    import platform

    sidecar = _rendered_sidecar(*one_thread_worker)
    assert sidecar["host"] == platform.node() and "dask_worker" not in sidecar
