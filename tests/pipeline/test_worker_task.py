"""render_task, the seam to the engine, in this process: what one job's trouble
costs the others of its task, and which checkpoints a later run may resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nst_engine.settings import RenderSettings
from nst_engine.types import Checkpoint
from pipeline import worker, worker_checkpoints
from pipeline.jobs import RenderJob, WorkerOptions, checkpoint_path

IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"
SETTINGS = RenderSettings(size=32, iterations=2)


def _job(name: str, content: str) -> RenderJob:
    return RenderJob(job_id=name, content=str(IMAGES / "content" / f"{content}.jpg"),
                     styles=(str(IMAGES / "style" / "starry_night.jpg"),), settings=SETTINGS,
                     output_name=f"{name}.png", content_label=content, style_label="starry_night")


@pytest.fixture
def options(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    return WorkerOptions(str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), checkpoint_every=1)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return worker.build_engine("cpu", WorkerOptions(str(tmp_path_factory.mktemp("engine")), cache_dir=None))


def _checkpoint(pixels: torch.Tensor) -> Checkpoint:
    return Checkpoint(stage=0, iteration=1, pixels=pixels)


def test_a_group_that_hits_a_bug_fails_alone_and_finished_results_go_out_at_once(engine, options, monkeypatch):
    fresh, resumed = _job("fresh", "chelsea"), _job("resumed", "neuschwanstein")
    worker_checkpoints.save_checkpoint(options, resumed, _checkpoint(torch.full((1, 3, 32, 21), 0.5)))
    real_render_batch, calls = engine.render_batch, []

    def render_batch(requests, **hooks):
        calls.append(len(requests))
        if len(calls) == 2:  # the resumed job renders in a group of its own, second
            raise RuntimeError("a bug in the second group")
        return real_render_batch(requests, **hooks)

    monkeypatch.setattr(engine, "render_batch", render_batch)
    sent = []
    records = worker.render_task(engine, [fresh, resumed], options,
                                 on_result=lambda record: sent.append((record["job_id"], record["status"])))
    assert calls == [1, 1]
    assert [r["status"] for r in records] == ["done", "failed"]
    assert records[1]["error"] == "internal error: RuntimeError: a bug in the second group"
    assert sent == [("fresh", "done"), ("resumed", "failed")]  # the image was out before the bug


def test_a_resumed_job_reports_the_seconds_before_its_interruption_too(engine, options):
    job = _job("resumed", "neuschwanstein")
    pixels = torch.rand(1, 3, 21, 32, generator=torch.Generator().manual_seed(0))  # 768×512 at 32 px
    worker_checkpoints.save_checkpoint(options, job, Checkpoint(0, 1, pixels, seconds=7.5))
    (record,) = worker.render_task(engine, [job], options)
    stats = record["stats"]
    assert (stats["resumed_from"], stats["seconds_before_resume"]) == (1, 7.5)
    assert 7.5 < stats["seconds"] <= stats["wall_seconds"]  # the whole job's, as the sheet adds them up
    # A checkpoint an older version wrote (no seconds) still resumes, its earlier time unknown.
    path = checkpoint_path(options.output_dir, job.job_id)
    torch.save({"stage": 0, "iteration": 1, "pixels": pixels}, path)
    (record,) = worker.render_task(engine, [job], options)
    assert (record["status"], record["stats"]["resumed_from"], record["stats"]["seconds_before_resume"]) == (
        "done", 1, 0.0)


def test_a_checkpoint_of_blown_up_pixels_is_neither_kept_nor_resumed(options):
    job = _job("nan", "chelsea")
    path = checkpoint_path(options.output_dir, job.job_id)
    worker_checkpoints.save_checkpoint(options, job, _checkpoint(torch.full((1, 3, 4, 4), float("nan"))))
    assert not path.exists()
    worker_checkpoints.save_checkpoint(options, job, _checkpoint(torch.full((1, 3, 4, 4), 0.5)))
    assert worker_checkpoints.load_checkpoint(options, job) is not None
    # One written before this check existed, or by another version:
    torch.save(_checkpoint(torch.full((1, 3, 4, 4), float("nan"))).to_state(), path)
    assert worker_checkpoints.load_checkpoint(options, job) is None
    assert not path.exists()


def test_a_job_that_diverges_loses_its_checkpoint(engine, options, monkeypatch):
    from nst_engine import RenderDivergedError

    job = _job("diverges", "chelsea")
    worker_checkpoints.save_checkpoint(options, job, _checkpoint(torch.full((1, 3, 32, 21), 0.5)))
    monkeypatch.setattr(engine, "render_batch", lambda requests, **hooks: [RenderDivergedError("the loss became NaN")])
    (record,) = worker.render_task(engine, [job], options)
    assert record["status"] == "failed" and "NaN" in record["error"]
    assert not checkpoint_path(options.output_dir, job.job_id).exists()


def test_a_stop_read_while_rendering_ends_the_worker_after_its_task(monkeypatch):
    # The engine's cancel check reads the pipe; a "stop" read there used to be
    # swallowed, and the worker then waited for another message until the
    # parent killed it (SHUTDOWN_SECONDS later).
    import multiprocessing
    import signal
    import threading
    import time

    from pipeline import worker_loop

    class Engine:
        device_name = "stand-in"

    def render_task(engine, jobs, options, *, on_progress, should_cancel, on_result):
        while not should_cancel():
            time.sleep(0.01)
        on_result({"job_id": jobs[0].job_id, "status": "interrupted"})

    monkeypatch.setattr(worker_loop, "build_engine", lambda device, options: Engine())
    monkeypatch.setattr(worker_loop, "max_batch_pixels", lambda engine: 0)
    monkeypatch.setattr(worker_loop, "render_task", render_task)
    parent, child = multiprocessing.Pipe()
    heard, result_heard = [], threading.Event()

    def parent_side() -> None:
        heard.append(parent.recv())  # ready
        parent.send(("task", [_job("a", "chelsea")]))
        time.sleep(0.2)
        parent.send(("stop", None))
        heard.append(parent.recv())  # the result
        result_heard.set()
        time.sleep(5)
        parent.close()  # what a parent that gave up on it would leave behind

    threading.Thread(target=parent_side, daemon=True).start()
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    try:
        worker_loop.worker_main(0, "cpu", WorkerOptions("unused"), child)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert time.monotonic() - started < 3
    assert result_heard.wait(2)
    assert [kind for kind, _ in heard] == ["ready", "result"]


def test_a_task_renders_from_the_bytes_it_carries_init_image_included(engine, options, tmp_path):
    # What a Dask worker on another machine gets: the bytes, not the files.
    import shutil
    from dataclasses import replace

    from pipeline.cluster import _input_bytes

    away = tmp_path / "submitting-machine"
    shutil.copytree(IMAGES, away)
    job = replace(_job("remote", "chelsea"), content=str(away / "content" / "chelsea.jpg"),
                  styles=(str(away / "style" / "starry_night.jpg"),),
                  settings=SETTINGS.with_overrides(init=str(away / "content" / "neuschwanstein.jpg")))
    inputs = _input_bytes([job])
    assert sorted(Path(path).name for path in inputs) == ["chelsea.jpg", "neuschwanstein.jpg", "starry_night.jpg"]
    shutil.rmtree(away)
    (record,) = worker.render_task(engine, [job], options, inputs=inputs)
    assert record["status"] == "done", record.get("error")


def test_a_cluster_task_shares_the_hosts_cores_again_when_workers_join(monkeypatch, options):
    # A Dask worker alone on its host takes every core; when a second one joins,
    # its next task takes its share (it kept 2 threads on 2 cores beside one more).
    from pipeline import cluster_task

    workers_here = [1]
    monkeypatch.setattr(cluster_task, "_engine", object())  # built for the first task, alone
    monkeypatch.setattr(cluster_task, "torch_threads_here", lambda device: 4 // workers_here[0])
    monkeypatch.setattr(worker, "local_device", lambda: "cpu")
    monkeypatch.setattr(worker, "render_task", lambda *args, **kwargs: [])
    before = torch.get_num_threads()
    try:
        seen = []
        for joined in (1, 2, 4):
            workers_here[0] = joined
            cluster_task._render([], options, {}, None, None, {}, None)
            seen.append(torch.get_num_threads())
    finally:
        torch.set_num_threads(before)
    assert seen == [4, 2, 1]


def test_a_stop_during_the_memory_fallback_keeps_the_images_it_finished(engine, options, monkeypatch):
    # Out of memory as a batch, the jobs render one at a time; a Ctrl-C while
    # the second renders must not throw away the first, finished image.
    from dataclasses import replace

    monkeypatch.setenv(worker.INJECT_OOM_ENV, "*")
    longer = SETTINGS.with_overrides(iterations=12)  # past the engine's first progress report, at 10
    first, second, third = (replace(_job(name, content), settings=longer) for name, content in
                            (("first", "chelsea"), ("second", "neuschwanstein"), ("third", "chelsea")))
    rendering = []
    records = worker.render_task(
        engine, [first, second, third], options,
        on_progress=lambda event: rendering.append(event["job_ids"]),
        should_cancel=lambda: bool(rendering) and rendering[-1] == ["second"])
    assert [r["status"] for r in records] == ["done", "interrupted", "interrupted"]
    assert records[0]["memory_fallback"] and records[0]["png"]


def test_a_checkpoint_is_on_disk_before_it_takes_its_name(options, monkeypatch):
    import os

    job, events = _job("durable", "chelsea"), []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("rename") or real_replace(a, b))
    worker_checkpoints.save_checkpoint(options, job, _checkpoint(torch.full((1, 3, 4, 4), 0.5)))
    assert events == ["fsync", "rename"]
    assert worker_checkpoints.load_checkpoint(options, job) is not None
