"""Which checkpoints a run deletes (pipeline/checkpoint_sweep.py): those no later
run of the manifest can resume, and never one of a job still to do.

`nst render` runs for real (lock, plan, Recorder, sheet) on a gallery whose
images are on disk; the executor is a stand-in that plays what a worker or a
Dask task would do, so no test here starts a process or loads torch."""

from __future__ import annotations

import io
import signal

import pytest
from cli_helpers import SAMPLES, write_manifest
from rich.console import Console
from test_job_state import _done

from pipeline import run
from pipeline.events import failure_record
from pipeline.jobs import checkpoint_path
from pipeline.manifest import load_manifest
from pipeline.plan_view import print_plan
from pipeline.recorder import Recorder
from pipeline.run import EXIT_FAILED, EXIT_OK, RenderOptions, execute, make_plan

STALE_ID = "0123456789ab"  # no job of these manifests has it: made under other settings


def _manifest(tmp_path):
    """Two jobs: chelsea and neuschwanstein × starry night."""
    return load_manifest(write_manifest(
        tmp_path / "m.yaml",
        [SAMPLES / "content" / "chelsea.jpg", SAMPLES / "content" / "neuschwanstein.jpg"],
        [SAMPLES / "style" / "starry_night.jpg"]))


def _render(manifest, jobs):
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    for job in jobs:
        recorder.record(job, _done(job))


def _plant(output_dir, job_id: str, data: bytes = b"pixels so far"):
    path = checkpoint_path(output_dir, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class _Script:
    """An executor that ends each job it is given as `ending(job)` says:
    ("done" | "failed" | "interrupted", via "worker" | "task"). A worker writes
    its checkpoint into the output folder before it reports; a Dask task sends
    it back with its record, for the Recorder to keep. "interrupted" is a Ctrl-C."""

    def __init__(self, ending) -> None:
        self.ending = ending
        self.given: list[str] = []

    def run(self, todo, listener, stop) -> None:
        for job in todo:
            self.given.append(job.job_id)
            status, via = self.ending(job)
            if status == "done":
                listener.on_result(job, _done(job))
                continue
            if status == "interrupted" and not stop.level:  # one Ctrl-C, not "stop now"
                stop.request(signal.SIGINT)
            record = {**failure_record(job, "timed out after 2 s on cpu"), "status": status}
            if via == "worker":
                _plant(listener.recorder.output_dir, job.job_id)
            else:
                record["checkpoint"] = b"pixels sent back by the task"
            listener.on_result(job, record)


@pytest.fixture
def script(monkeypatch):
    """Install `ending` as the run's executor; returns the executor."""
    def install(ending):
        executor = _Script(ending)
        monkeypatch.setattr(run, "_executor", lambda *args: (executor, ["cpu"]))
        return executor
    return install


@pytest.mark.parametrize("status", ["failed", "interrupted"])
@pytest.mark.parametrize("via", ["worker", "task"])
def test_a_forced_rerender_that_does_not_finish_leaves_no_checkpoint(tmp_path, script, status, via):
    # --force --job-timeout 2 (or a Ctrl-C): the earlier image stays the job's
    # output, so no plain run renders it again, and its checkpoint would stay forever.
    manifest = _manifest(tmp_path)
    _render(manifest, manifest.jobs)
    executor = script(lambda job: (status, via))
    code = execute(manifest, RenderOptions(force=True, live=False, quiet=True))
    assert code == (EXIT_FAILED if status == "failed" else 130)
    assert executor.given  # it did run, and made (or was sent) a checkpoint
    assert not list((manifest.output_dir / ".checkpoints").glob("*.pt"))
    assert make_plan(manifest, RenderOptions()).todo == ()  # still done, with the earlier image


def test_force_only_renders_a_done_job_from_the_start_not_from_a_checkpoint(tmp_path, script):
    # The README's way to get the uninterrupted render of a job that was resumed
    # (L-BFGS restarted its history there): `nst render MANIFEST --force --only JOB`.
    # Whatever checkpoint of it is left (here a killed --force re-render's), none
    # may be there when its worker starts.
    manifest = _manifest(tmp_path)
    chelsea, _ = manifest.jobs
    _render(manifest, manifest.jobs)
    _plant(manifest.output_dir, chelsea.job_id)
    had_checkpoint = {}

    def ending(job):
        had_checkpoint[job.job_id] = checkpoint_path(manifest.output_dir, job.job_id).exists()
        return ("done", "worker")

    script(ending)
    assert execute(manifest, RenderOptions(force=True, only=chelsea.job_id, live=False, quiet=True)) == EXIT_OK
    assert had_checkpoint == {chelsea.job_id: False}


@pytest.mark.parametrize("via", ["worker", "task"])
@pytest.mark.parametrize("only", [None, "neuschwanstein*"])
def test_a_job_still_to_do_keeps_its_checkpoint_after_an_interrupted_run(tmp_path, script, via, only):
    manifest = _manifest(tmp_path)
    first, second = manifest.jobs
    _render(manifest, [first])
    _plant(manifest.output_dir, first.job_id)  # done: nothing can resume it
    script(lambda job: ("interrupted", via))
    assert execute(manifest, RenderOptions(only=only, live=False, quiet=True)) == 130
    assert checkpoint_path(manifest.output_dir, second.job_id).is_file()  # resumes next run
    assert not checkpoint_path(manifest.output_dir, first.job_id).exists()


def test_a_job_left_to_do_by_only_keeps_its_checkpoint(tmp_path, script):
    manifest = _manifest(tmp_path)
    chelsea, neuschwanstein = manifest.jobs
    kept = _plant(manifest.output_dir, neuschwanstein.job_id)  # an earlier run's, not selected now
    script(lambda job: ("done", "worker"))
    assert execute(manifest, RenderOptions(only="chelsea*", live=False, quiet=True)) == EXIT_OK
    assert kept.is_file()


@pytest.mark.parametrize("left", ["nothing", "a job"])
def test_a_full_run_deletes_the_checkpoints_of_jobs_no_longer_in_the_manifest(tmp_path, script, left):
    manifest = _manifest(tmp_path)
    _render(manifest, manifest.jobs if left == "nothing" else manifest.jobs[:1])
    stale = _plant(manifest.output_dir, STALE_ID)
    script(lambda job: ("done", "worker"))
    assert execute(manifest, RenderOptions(live=False, quiet=True)) == EXIT_OK
    assert not stale.exists()


def test_a_full_run_whose_jobs_fail_deletes_the_stale_ones_and_keeps_its_own(tmp_path, script):
    # Not finishing a job is no reason to keep a checkpoint no job can resume.
    manifest = _manifest(tmp_path)
    stale = _plant(manifest.output_dir, STALE_ID)
    script(lambda job: ("failed", "task"))  # a Dask task past its job_timeout
    assert execute(manifest, RenderOptions(live=False, quiet=True)) == EXIT_FAILED
    assert not stale.exists()
    for job in manifest.jobs:
        assert checkpoint_path(manifest.output_dir, job.job_id).is_file()  # they go on from there


@pytest.mark.parametrize("how", ["only", "interrupted"])
def test_stale_checkpoints_outlive_a_run_that_is_not_full(tmp_path, script, how):
    # A user who reverts the setting gets the old job id back, and its render goes on.
    manifest = _manifest(tmp_path)
    stale = _plant(manifest.output_dir, STALE_ID)
    script(lambda job: ("interrupted" if how == "interrupted" else "done", "worker"))
    execute(manifest, RenderOptions(only="chelsea*" if how == "only" else None, live=False, quiet=True))
    assert stale.is_file()


def _plan_text(manifest, only=None) -> str:
    console = Console(file=io.StringIO(), width=160, soft_wrap=True)  # a note is one line, however long
    options = RenderOptions(only=only)
    print_plan(console, manifest, make_plan(manifest, options))
    return console.file.getvalue()


def test_nst_plan_notes_the_checkpoints_the_next_full_run_deletes(tmp_path):
    manifest = _manifest(tmp_path)
    _plant(manifest.output_dir, manifest.jobs[0].job_id)  # an interrupted job's: it resumes, no note
    assert "checkpoint" not in _plan_text(manifest)
    _plant(manifest.output_dir, STALE_ID, b"x" * 3 * 2**20)
    _plant(manifest.output_dir, "ba9876543210", b"x" * 2**19)
    note = (f"note: 2 checkpoints of jobs no longer in the manifest (3.5 MiB) in "
            f"{manifest.output_dir / '.checkpoints'} (a setting or an image changed since); "
            "the next full run (no --only, not interrupted) deletes them")
    assert note in _plan_text(manifest)
    assert note in _plan_text(manifest, only="chelsea*")  # the whole manifest's jobs, not the selection's
    (manifest.output_dir / ".checkpoints" / f".{STALE_ID}.pt.42.tmp").write_bytes(b"half")  # not a checkpoint
    assert note in _plan_text(manifest)
