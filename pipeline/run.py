"""`nst render`: manifest -> plan -> executor -> recorder, with exit codes for cron.

Exit codes: 0 all rendered, 1 some jobs failed (or a Dask run lost its
cluster), 2 bad manifest or usage, 75 output folder busy (another run holds
it), 130 interrupted (SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from .cache_admin import warn_if_the_cache_cannot_be_written
from .checkpoint_sweep import describe_removed, remove_finished, remove_stale
from .devices import workers_for
from .display import TERMINAL, ProgressDisplay, setup_logging
from .errors import PipelineError
from .events import StopSignal
from .jobs import RenderJob, WorkerOptions, threads_per_worker
from .labels import count, select
from .lock import OutputLock, remove_dead_runs_temp_files
from .manifest import Manifest
from .outputs import output_is_complete
from .recorder import Recorder
from .renames import adopt_renamed, find_renamed
from .run_marks import next_run, note_run_end, note_run_start, note_stopped_while_planning
from .run_options import RenderOptions, cluster_address, requested_devices
from .scheduler import DEFAULT_BATCH_CAP, Plan, plan
from .stop_signals import EXIT_SIGNAL, Terminated, signal_of, stop_on_signals

log = logging.getLogger("nst")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 75


def make_plan(manifest: Manifest, options: RenderOptions) -> Plan:
    jobs = select(manifest.jobs, options.only)
    if options.force:
        return plan(jobs, lambda job: False)
    return plan(jobs, lambda job: output_is_complete(manifest.output_dir, job))


def pending_renames(manifest: Manifest, options: RenderOptions, the_plan: Plan) -> dict[str, Path]:
    """Jobs to do whose output is complete under an older name (renames.py):
    the render moves them instead of rendering them; --force renders all."""
    if options.force or not the_plan.todo:
        return {}
    return find_renamed(manifest.output_dir, the_plan.todo)


def execute(manifest: Manifest, options: RenderOptions) -> int:
    output_dir = manifest.output_dir
    with OutputLock(output_dir, wait=options.wait, quiet=options.quiet):
        live = sys.stderr.isatty() if options.live is None else options.live
        # One Console for the bars and the log lines, so lines print above the bars.
        console = Console(stderr=True) if live else None
        setup_logging(output_dir / "nst.log", console=console, quiet=options.quiet)
        shared = note_run_start(manifest, options)
        try:
            code = _plan_and_render(manifest, options, live=live, console=console, shared=shared)
        except (KeyboardInterrupt, Terminated) as stopped:  # before the render's own handling
            note_run_end(EXIT_SIGNAL[signal_of(stopped)])
            raise
        except Exception as error:
            note_run_end(None, error)
            raise
        note_run_end(code)
        return code


def _plan_and_render(manifest: Manifest, options: RenderOptions, *, live: bool, console: Console | None,
                     shared: bool) -> int:
    """shared: the folder's last run rendered another manifest, whose checkpoints are not stale."""
    output_dir = manifest.output_dir
    try:  # a signal here raises (cli_errors): planning has nothing to save
        the_plan = _prepare(manifest, options)
        # The sheet and summary.json cover the whole gallery; --only limits what renders.
        recorder = Recorder(output_dir, list(manifest.jobs), title=manifest.path.stem, manifest=str(manifest.path))
        log.info("%s: %s, %d already done, %d to render -> %s", manifest.path.name,
                 count(len(the_plan.done) + len(the_plan.todo), "job"), len(the_plan.done), len(the_plan.todo),
                 output_dir, extra=TERMINAL)
        # Left by a killed --force re-render: nothing to resume (checkpoint_sweep).
        remove_finished(output_dir, manifest.jobs)
        recorder.mark_queued(list(the_plan.todo), forced=options.force)
    except (KeyboardInterrupt, Terminated) as stopped:
        note_stopped_while_planning(manifest, signal_of(stopped))
        raise
    if not the_plan.todo:
        _tidy_checkpoints(manifest, options, interrupted=False, shared=shared)
        summary = recorder.write_summary(EXIT_OK, [], skipped=len(the_plan.done))
        left = summary["failed"] + summary["pending"] + summary["interrupted"]
        if options.only and left:  # "every output is up to date" would hide the rest of the gallery
            log.info("nothing to render: the jobs --only %r selects are up to date; %s", options.only,
                     next_run(summary["failed"], left - summary["failed"], after_only=True), extra=TERMINAL)
        else:
            log.info("nothing to render: every output is up to date (use --force to render again)",
                     extra=TERMINAL)
        return EXIT_OK
    return _render(manifest, options, the_plan, recorder, live=live, console=console, shared=shared)


def _prepare(manifest: Manifest, options: RenderOptions) -> Plan:
    """Everything before the render, under the lock: the manifest's notes, the
    cache check, a killed run's temp files, and the plan, with renamed outputs
    moved and counted as done."""
    # Notes, not warnings: a copied photo or a render inside a scanned folder
    # is handled, and -q from cron must not mail about it every night. Copies
    # are capped here and in nst.log too: the log grows by every night's notes,
    # and `nst plan --all` lists every copy as the folder is now.
    for notice in manifest.shown_notices():
        log.info("%s: note: %s", manifest.path.name, notice)
    if cluster_address(manifest, options) is None:  # a cluster's workers keep their own caches
        warn_if_the_cache_cannot_be_written()
    removed = remove_dead_runs_temp_files(manifest.output_dir, {Path(job.output_name).parent for job in manifest.jobs})
    if removed:
        log.info("removed %s left by an earlier run that was killed", count(removed, "half-written temp file"))
    the_plan = make_plan(manifest, options)
    found = pending_renames(manifest, options, the_plan)
    if found:
        renamed = adopt_renamed(manifest.output_dir, the_plan.todo, found, manifest=str(manifest.path))
        log.info("%s renamed, not rendered again: their names changed, their renders did not",
                 count(len(renamed), "output"), extra=TERMINAL)
        the_plan = the_plan.with_done(renamed)  # moved whole: no need to read every output again
    return the_plan


def _render(manifest: Manifest, options: RenderOptions, the_plan: Plan, recorder: Recorder, *,
            live: bool, console: Console | None, shared: bool) -> int:
    """Run the plan's jobs on the executor; the exit code."""
    todo = list(the_plan.todo)
    stop = StopSignal()
    # From here a signal stops the run gently, also while the devices are looked
    # up (torch's import and CUDA's start: seconds), and the summary is written.
    with stop_on_signals(stop, cluster=cluster_address(manifest, options) is not None):
        executor, devices = _executor(manifest, options, todo)
        recorder.write_start(devices, skipped=len(the_plan.done))
        display = ProgressDisplay(todo, live=live and not options.quiet, console=console, title=manifest.path.stem)
        try:
            if not stop.level:  # else stopped before any worker started: start none
                with display:
                    executor.run(todo, _Fanout(recorder, display), stop)
        except PipelineError as error:  # e.g. no cluster at the address, or one that never had a worker
            # In nst.log and summary.json too: a killed run is the one that leaves exit_code null.
            log.error("%s", error)
            _tidy_checkpoints(manifest, options, interrupted=True)
            recorder.write_summary(EXIT_USAGE, devices, skipped=len(the_plan.done))
            return EXIT_USAGE
        return _finish(manifest, options, the_plan, recorder, stop, devices, shared=shared)


def _finish(manifest: Manifest, options: RenderOptions, the_plan: Plan, recorder: Recorder, stop: StopSignal,
            devices: list[str], *, shared: bool) -> int:
    """After the executor: the checkpoints, summary.json, the last line; the exit code."""
    _tidy_checkpoints(manifest, options, interrupted=stop.level > 0, shared=shared)
    code = _exit_code(recorder, the_plan.todo, stop)
    summary = recorder.write_summary(code, devices, skipped=len(the_plan.done))
    # A warning when jobs failed or a signal cut the run short (`timeout 8h` in a
    # crontab), so -q's mail has the counts, what is left and the sheet's path too.
    log.log(logging.WARNING if summary["failed_this_run"] or stop.level else logging.INFO,
            "finished: %d rendered, %d failed; %s, %.1f s -> %s",
            summary["rendered"], summary["failed_this_run"],
            next_run(summary["failed"], summary["pending"] + summary["interrupted"], after_only=bool(options.only),
                     kept_earlier=recorder.kept_earlier_images),
            summary["wall_seconds"], manifest.output_dir / "index.html", extra=TERMINAL)
    return code


def _tidy_checkpoints(manifest: Manifest, options: RenderOptions, *, interrupted: bool,
                      shared: bool = False) -> None:
    """After the executor, whose workers are gone by now: delete the checkpoints
    no later run of this manifest can resume (checkpoint_sweep). A job still
    to do keeps its own, whether this run was interrupted, limited by --only or
    on a cluster: its output is not complete, and its id is in the manifest."""
    finished = remove_finished(manifest.output_dir, manifest.jobs)
    if finished:  # a --force re-render that did not finish: its earlier image stays
        log.info("%s (their earlier images stay)",
                 describe_removed(finished, "--force re-renders that did not finish"))
    # Stale ones only after a full run: until then a user may revert a setting
    # (or stop a run started with the wrong one) and get the old job id back.
    # Nor after another manifest's run here: they may be its (run_marks).
    if options.only is None and not interrupted and not shared:
        stale = remove_stale(manifest.output_dir, manifest.jobs)
        if stale:
            log.info("%s (a setting or an image changed since)",
                     describe_removed(stale, f"jobs no longer in {manifest.path.name}"))


def _executor(manifest: Manifest, options: RenderOptions, todo: list[RenderJob]):
    run = manifest.run
    checkpoint_every = run.checkpoint_every if run.checkpoint_every is not None else 50
    worker_options = WorkerOptions(str(manifest.output_dir), None, checkpoint_every,
                                   manifest_dir=str(manifest.path.parent))
    cluster = cluster_address(manifest, options)
    # `is not None`: a flag given as 0 must not quietly become the manifest's value.
    job_timeout = options.job_timeout if options.job_timeout is not None else run.job_timeout
    if cluster:
        from .cluster import DaskExecutor

        source = "--cluster" if options.cluster is not None else manifest.cluster_source()
        executor = DaskExecutor(cluster, worker_options, job_timeout=job_timeout, source=source,
                                grace_seconds=options.grace_seconds)
        return executor, [f"dask:{cluster}"]
    from .devices import cpu_oversubscription, emulated_bf16, resolve_devices, torchvision_download
    from .local_executor import LocalExecutor

    asked = resolve_devices(*requested_devices(manifest, options))
    devices = workers_for(asked, len(todo))
    if len(devices) < len(asked):
        log.info("starting %d of the %d workers asked for: only %s to render", len(devices), len(asked),
                 count(len(todo), "job"))
    for warning in (cpu_oversubscription(devices), emulated_bf16(todo, devices), torchvision_download(todo)):
        if warning:
            log.warning("%s", warning)
    worker_options = replace(worker_options, threads=threads_per_worker(sum(1 for d in devices if d == "cpu"), len(devices)))
    log.info("devices: %s", ", ".join(devices))
    executor = LocalExecutor(
        devices, worker_options,
        job_timeout=job_timeout,
        batch_cap=run.batch_size or DEFAULT_BATCH_CAP,
        explicit_batch=run.batch_size is not None,
        grace_seconds=options.grace_seconds,
    )
    return executor, list(devices)


def _exit_code(recorder: Recorder, todo: Sequence[RenderJob], stop: StopSignal) -> int:
    if stop.level:
        return EXIT_SIGNAL.get(stop.signal_number, 130)
    # This run's own results: the sheet may show a failed --force re-render's older image as done.
    statuses = [recorder.outcomes.get(job.job_id, {}).get("status") for job in todo]
    return EXIT_OK if all(s == "done" for s in statuses) else EXIT_FAILED


class _Fanout:
    """Every executor event goes to the recorder (files) and the display (screen)."""

    def __init__(self, recorder: Recorder, display: ProgressDisplay) -> None:
        self.recorder = recorder
        self.display = display

    def on_worker(self, slot, device, info) -> None:
        self.recorder.note_worker(slot, device)
        self.display.on_worker(slot, device, info)

    def on_start(self, slot, jobs) -> None:
        self.recorder.mark_started(slot, jobs)
        self.display.on_start(slot, jobs)

    def on_progress(self, slot, event) -> None:
        self.display.on_progress(slot, event)

    def on_result(self, job, record) -> None:
        record = self.recorder.record(job, record)
        self.display.on_result(job, record)

    def on_idle(self) -> None:
        self.recorder.catch_up()
