"""Local worker processes: one per device, replaced when they die, never looping forever.

Every test here starts real processes (the CLI as a subprocess, spawned workers);
the renders are tiny (48 px) so the whole file takes well under a minute.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading

import psutil
import pytest
from process_helpers import (
    STARTS_LINE,
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
    worker_pids,
    write_manifest,
)

from pipeline.devices import probe_cuda_devices, resolve_devices
from pipeline.errors import PipelineError
from pipeline.events import StopSignal
from pipeline.jobs import WorkerOptions
from pipeline.local_executor import LocalExecutor
from pipeline.manifest import load_manifest

pytestmark = pytest.mark.slow

CONTENTS = ["chelsea", "neuschwanstein"]
STYLES = ["starry_night", "night_cafe"]
# Long enough that a kill lands mid-job: 1-3 s a job on a CPU with bf16, ~10 s on one without.
SETTINGS = {"size": 48, "iterations": 120}
# Long enough that the second worker is up (in the same second as the first)
# before the first clears the queue of four: ~5 s a job on a CPU without bf16.
SHARED_SETTINGS = {"size": 48, "iterations": 60}


def test_two_cpu_workers_share_the_gallery_and_do_each_job_once(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, CONTENTS, STYLES, settings=SHARED_SETTINGS)
    out = gallery_dir.parent / "out"
    code, printed = run(manifest, "--devices", "cpu*2")
    assert code == 0, printed
    cars = sidecars(out)
    assert len(cars) == 4
    assert len({car["worker_pid"] for car in cars.values()}) == 2, "both workers should have rendered"
    assert set(worker_pids(out).values()) == {car["worker_pid"] for car in cars.values()}
    assert done_counts(out) == {job_id: 1 for job_id in cars}
    assert all(car["attempts"] == 1 for car in cars.values())
    assert len(output_pngs(out)) == 4 and all(decodes(p) for p in output_pngs(out))


def test_a_worker_killed_mid_job_is_replaced_and_its_job_retried(gallery_dir):
    manifest = write_manifest(gallery_dir.parent, CONTENTS, STYLES, settings=SETTINGS)
    out = gallery_dir.parent / "out"
    process = start(manifest, "--devices", "cpu*2")
    try:
        slot, name = wait_for(lambda: _busy_worker(out), what="a worker to start a job",
                              process=process)
        pid = worker_pids(out)[slot]
        children = {child.pid for child in psutil.Process(process.pid).children()}
        assert pid in children, f"worker {slot} (pid {pid}) is not a child of the run: {children}"
        os.kill(pid, signal.SIGKILL)
        code = process.wait(150)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, (gallery_dir.parent / "run.txt").read_text()
    records = {r["output"]: r for r in results(out) if r["status"] == "done"}
    killed = records[f"{name}.png"]
    assert killed["attempts"] == 2
    assert killed["worker_pid"] != pid
    assert all(r["attempts"] == 1 for output, r in records.items() if output != f"{name}.png")
    assert len(records) == 4 and set(done_counts(out).values()) == {1}
    assert [r for r in results(out) if r["status"] != "done"] == []  # a retry is not a failure
    assert worker_pids(out)[slot] != pid, "a replacement worker should have announced itself"
    # Named as every other log line names a job, without .png.
    assert f"worker {slot} on cpu (pid {pid}) died (killed by SIGKILL) under {name}\n" in log_text(out)
    assert all(decodes(p) for p in output_pngs(out)) and leftovers(out) == []


def _busy_worker(out):
    """(slot, job name) of the latest job a worker started that is not done yet."""
    text = log_text(out)
    started = STARTS_LINE.findall(text)
    pids = worker_pids(out)
    for slot, name in reversed(started):
        if f"done {name}" not in text and int(slot) in pids:
            return int(slot), name
    return None


# -- devices ---------------------------------------------------------------------------


def test_cpu_times_two_means_two_cpu_workers():
    assert resolve_devices("cpu*2") == ("cpu", "cpu")
    assert resolve_devices(("cpu",)) == ("cpu",)


@functools.cache
def _visible_gpus() -> tuple[str, ...]:
    return tuple(d.name for d in probe_cuda_devices())  # a child interpreter: ~1-2 s


def test_devices_default_to_every_gpu_else_the_cpu():
    # Here (no GPU) that is one CPU worker; on a GPU machine, one worker per GPU.
    assert resolve_devices(None) == (_visible_gpus() or ("cpu",))


def test_a_gpu_that_is_not_there_is_a_one_line_error():
    missing = "cuda:0" if "cuda:0" not in _visible_gpus() else "cuda:99"
    with pytest.raises(PipelineError) as caught:
        resolve_devices(missing)
    message = str(caught.value)
    assert "\n" not in message and missing in message and "not visible" in message
    with pytest.raises(PipelineError, match="--devices"):
        resolve_devices("tpu")


class _Collect:
    def __init__(self) -> None:
        self.results: dict[str, dict] = {}
        self.started: list = []
        self.idle_calls = 0

    def on_worker(self, slot, device, info) -> None:
        pass

    def on_start(self, slot, jobs) -> None:
        self.started.append((slot, jobs))

    def on_progress(self, slot, event) -> None:
        pass

    def on_result(self, job, record) -> None:
        self.results[job.job_id] = record

    def on_idle(self) -> None:
        self.idle_calls += 1


def _run_executor(devices, gallery_dir):
    """LocalExecutor.run on a two-job gallery, in a thread so a hang fails instead of blocking."""
    if _visible_gpus():
        pytest.skip("needs a machine where cuda:0 cannot work")
    manifest = load_manifest(write_manifest(gallery_dir.parent, ["chelsea"], STYLES,
                                            settings={"size": 32, "iterations": 2}))
    executor = LocalExecutor(devices, WorkerOptions(str(manifest.output_dir), None, 0, threads=1))
    listener, stop = _Collect(), StopSignal()
    thread = threading.Thread(target=executor.run, args=(manifest.jobs, listener, stop), daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():  # stop any runaway worker before failing
        stop.request()
        stop.request()
        thread.join(15)
        pytest.fail("the executor kept restarting a worker that cannot start")
    assert multiprocessing.active_children() == [], "no worker may outlive the run"
    assert set(listener.results) == {job.job_id for job in manifest.jobs}
    return listener


def test_a_worker_that_cannot_start_fails_the_jobs_instead_of_looping(gallery_dir):
    # Forced past resolve_devices: on a CPU-only torch every cuda:0 worker dies at startup.
    listener = _run_executor(["cuda:0"], gallery_dir)
    assert listener.started == [], "no job should go to a worker that never got ready"
    for record in listener.results.values():
        assert record["status"] == "failed"
        assert record["error"].startswith("no worker could run: ")
        assert "cuda" in record["error"].lower(), record["error"]  # the worker's own reason
        assert "\n" not in record["error"]


def test_a_device_that_cannot_start_leaves_the_work_to_the_others(gallery_dir):
    listener = _run_executor(["cuda:0", "cpu"], gallery_dir)
    assert {slot for slot, _ in listener.started} == {1}
    assert [r["status"] for r in listener.results.values()] == ["done", "done"]
    assert {r["device"] for r in listener.results.values()} == {"cpu"}
    assert listener.idle_calls > 0  # the recorder's chance to write a deferred sheet
