"""The Dask path (joblib's dask backend) gives the same gallery as a local run.

Runs go through `pipeline.run.execute` in this process, since a LocalCluster
lives here; the local reference run still renders in a spawned worker.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from dask_helpers import FREE_DASHBOARD_PORT
from PIL import Image
from process_helpers import done_counts, log_text, output_pngs, results, sidecars, write_manifest

from pipeline.manifest import load_manifest
from pipeline.run import RenderOptions, execute

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed")

SETTINGS = {"size": 32, "iterations": 4}
CONTENTS = ["chelsea"]
STYLES = ["starry_night", "night_cafe"]
REPO_IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One local CPU render of the gallery, shared by the tests below."""
    folder = tmp_path_factory.mktemp("dask")
    shutil.copytree(REPO_IMAGES, folder / "images")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NST_CACHE_DIR", str(folder / "cache"))
        manifest = write_manifest(folder, CONTENTS, STYLES, settings=SETTINGS,
                                  name="local.yaml", output="out-local")
        code = execute(load_manifest(manifest), RenderOptions(devices=("cpu",), live=False, quiet=True))
    assert code == 0
    return folder


@pytest.fixture
def one_torch_thread():
    """An in-process cluster renders in this process: keep torch to one thread,
    as a Dask worker process has (Dask sets OMP_NUM_THREADS=1 for its workers)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _render_on(cluster, folder, name):
    manifest = write_manifest(folder, CONTENTS, STYLES, settings=SETTINGS,
                              name=f"{name}.yaml", output=f"out-{name}")
    code = execute(load_manifest(manifest),
                   RenderOptions(cluster=cluster.scheduler_address, live=False, quiet=True))
    assert code == 0
    return folder / f"out-{name}"


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def _assert_same_gallery(out, reference_out):
    assert {p.name for p in output_pngs(out)} == {p.name for p in output_pngs(reference_out)}
    assert set(sidecars(out)) == set(sidecars(reference_out))
    assert {r["job_id"] for r in results(out)} == {r["job_id"] for r in results(reference_out)}
    assert set(done_counts(out).values()) == {1}
    for car in sidecars(out).values():
        assert car["attempts"] == 1 and car["worker_pid"] and car["device"] == "cpu"
    diffs = {}
    for png in output_pngs(out):
        ours, theirs = _pixels(png), _pixels(reference_out / png.name)
        assert ours.shape == theirs.shape
        diffs[png.name] = int(np.abs(ours - theirs).max())
    # Same seed, same settings, same CPU kernels. Measured here: bit-identical
    # (max difference 0) at 32 px, with 2 torch threads locally and 1 or 2 on
    # the Dask workers; ±1 allows for another CPU's kernels.
    assert max(diffs.values()) <= 1, diffs
    return diffs


def test_in_process_cluster_renders_the_same_gallery(reference, one_torch_thread, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setenv("NST_CACHE_DIR", str(reference / "cache"))
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        out = _render_on(cluster, reference, "inprocess")
    _assert_same_gallery(out, reference / "out-local")
    summary = (out / "summary.json").read_text()
    assert "dask:" in summary


def _torch_threads():
    import torch

    return torch.get_num_threads()


def _render_on_worker_processes(reference, workers, name):
    """The gallery rendered on a LocalCluster of `workers` single-thread processes;
    (out, {worker address: pid}, the torch threads each rendered with)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        out = _render_on(cluster, reference, name)
        with distributed.Client(cluster) as client:
            return out, client.run(os.getpid), list(client.run(_torch_threads).values())


def test_two_process_cluster_renders_the_same_gallery(reference, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(reference / "cache"))
    out, workers, threads = _render_on_worker_processes(reference, 2, "processes")
    assert len(workers) == 2
    assert threads == [max(1, (os.cpu_count() or 1) // 2)] * 2  # the host's cores, shared
    _assert_same_gallery(out, reference / "out-local")
    # Each sidecar names the worker that rendered it, by its address and pid, and its machine.
    for car in sidecars(out).values():
        assert workers[car["dask_worker"]] == car["worker_pid"], (car, workers)
        assert car["host"] == socket.gethostname()
    sheet = (out / "index.html").read_text()
    assert sheet.count("<dt>Dask worker</dt><dd>tcp://127.0.0.1:") == len(sidecars(out)), sheet


def test_a_cluster_of_one_single_thread_worker_renders_there_not_here(reference, monkeypatch):
    # joblib ran the tasks in the submitting process when the cluster had one
    # thread in all: a one-GPU cluster rendered on the wrong machine.
    monkeypatch.setenv("NST_CACHE_DIR", str(reference / "cache"))
    out, workers, threads = _render_on_worker_processes(reference, 1, "one-thread")
    worker_pids = set(workers.values())
    assert {car["worker_pid"] for car in sidecars(out).values()} <= worker_pids
    # Every core, not the one Dask's OMP_NUM_THREADS=1 left it.
    assert threads == [os.cpu_count() or 1]
    assert os.getpid() not in worker_pids
    _assert_same_gallery(out, reference / "out-local")
    assert re.search(r"INFO Dask cluster at tcp://127\.0\.0\.1:\d+ with 1 worker\n", log_text(out))


def test_a_cluster_job_past_its_timeout_fails_and_the_others_render(reference, one_torch_thread, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setenv("NST_CACHE_DIR", str(reference / "cache"))
    endless = {"content": str(reference / "images" / "content" / "neuschwanstein.jpg"),
               "style": str(reference / "images" / "style" / "starry_night.jpg"),
               "settings": {"iterations": 2000}}  # far past 10 s, yet ends if unchecked
    manifest = write_manifest(reference, CONTENTS, STYLES[:1], settings=SETTINGS, name="timeout.yaml",
                              output="out-timeout", extra_jobs=[endless])
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        code = execute(load_manifest(manifest), RenderOptions(
            # 10 s: the short job takes ~0.3 s here, but up to ~4 s on a loaded 2-core machine.
            cluster=cluster.scheduler_address, job_timeout=10, live=False, quiet=True))
    assert code == 1
    records = {r["output"]: r for r in results(reference / "out-timeout")}
    statuses = {name: r["status"] for name, r in records.items()}
    assert sorted(statuses.values()) == ["done", "failed"], statuses
    (failed,) = (r for r in records.values() if r["status"] == "failed")
    assert "neuschwanstein" in failed["output"]
    assert failed["error"] == "timed out after 10 s on cpu"


def test_a_stop_reaches_a_running_cluster_task_within_seconds(reference, one_torch_thread, monkeypatch):
    import threading
    import time

    from distributed import LocalCluster

    from pipeline.cluster import DaskExecutor
    from pipeline.events import StopSignal
    from pipeline.jobs import WorkerOptions

    monkeypatch.setenv("NST_CACHE_DIR", str(reference / "cache"))
    manifest = write_manifest(reference, ["chelsea", "neuschwanstein"], STYLES[:1],
                              settings={"size": 32, "iterations": 100_000}, name="stop.yaml", output="out-stop")
    jobs = load_manifest(manifest).jobs  # one worker thread: one renders, the other waits its turn
    records, stop, asked, pressed = {}, StopSignal(), [], []

    class Listener:
        def on_worker(self, *args): ...
        def on_start(self, *args): ...
        def on_progress(self, *args): ...

        def on_result(self, job, record):
            records[job.job_id] = record

        def on_idle(self):
            asked.append("idle")

    from pipeline import cluster_task

    rendering, render = threading.Event(), cluster_task._render

    def noted_render(*args):
        rendering.set()  # an in-process cluster: the task runs in a thread of this process
        return render(*args)

    monkeypatch.setattr(cluster_task, "_render", noted_render)

    def press_ctrl_c() -> None:
        rendering.wait(60)  # a task has got past its first stop check and renders (or never will: the asserts say so)
        pressed.append(time.monotonic())
        stop.request()

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        # job_timeout only bounds this test if the stop never arrives.
        DaskExecutor(cluster.scheduler_address, WorkerOptions(str(reference / "out-stop")), job_timeout=30).run(
            jobs, Listener(), stop)
        after_stop = time.monotonic() - pressed[0]
    # One was stopped while rendering; the other, queued, saw the stop before it
    # began, and stays pending (no result), as a job a local run never started.
    assert [(r["status"], "device" in r) for r in records.values()] == [("interrupted", True)], records
    assert after_stop < 10, after_stop  # the task reads the stop at most a second late, then ends its iteration
    assert "idle" in asked  # waiting for results, the executor gave the recorder its moments


def test_a_job_that_kills_every_worker_it_runs_on_fails_alone(reference, monkeypatch):
    # Dask gives up on such a task (KilledWorker). joblib then waited forever
    # for it, and, once told, dropped every other task of the run with it.
    import signal
    import threading

    import dask
    from distributed import LocalCluster

    monkeypatch.setenv("NST_CACHE_DIR", str(reference / "cache"))
    monkeypatch.setenv("NST_TEST_INJECT_CRASH", "chelsea--night_cafe-*")  # the worker processes inherit it
    manifest = write_manifest(reference, ["chelsea", "neuschwanstein"], STYLES, settings=SETTINGS,
                              name="crash.yaml", output="out-crash")
    # Should the run hang, a Ctrl-C ends it (exit 130) instead of the suite.
    watchdog = threading.Timer(150, lambda: os.kill(os.getpid(), signal.SIGINT))
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=FREE_DASHBOARD_PORT,
    ) as cluster:
        watchdog.start()
        try:
            code = execute(load_manifest(manifest),
                           RenderOptions(cluster=cluster.scheduler_address, live=False, quiet=True))
        finally:
            watchdog.cancel()
    records = {r["output"].split("-")[0] + "×" + r["output"].split("--")[1].rsplit("-", 1)[0]: r
               for r in results(reference / "out-crash")}
    assert code == 1, records
    assert {name: (r["status"], r.get("error")) for name, r in records.items()} == {
        "chelsea×starry_night": ("done", None),
        # allowed-failures 1: Dask gives up once the second worker running it dies.
        "chelsea×night_cafe": ("failed", "Dask cluster: the worker died each of the 2 times it ran this job"
                                         " (KilledWorker)"),
        "neuschwanstein×starry_night": ("done", None), "neuschwanstein×night_cafe": ("done", None),
    }
    # Named as every other line names a job: without ".png".
    assert re.search(r"WARNING Dask gave up on chelsea--night_cafe-[0-9a-f]{12}: every worker that ran it died; "
                     r"(1 other job goes|\d+ other jobs go) on\n", log_text(reference / "out-crash"))
