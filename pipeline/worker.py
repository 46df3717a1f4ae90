"""The one seam between the pipeline and the engine: render a task of jobs.

Everything here runs inside a worker (a local worker process, or a Dask
worker); it is the only pipeline module that imports torch. It turns each job
into a plain result dict (strings, numbers and PNG bytes), so a failure is a
result and never takes the worker down with it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from nst_engine import EngineError, RenderCancelledError, RenderDivergedError
from nst_engine.engine import Engine
from nst_engine.image_files import check_render_sizes
from nst_engine.images import load_image, read_image_file
from nst_engine.types import Checkpoint, RenderRequest

from .events import INTERRUPTED_REASON, internal_error_reason
from .input_checks import INIT_LABEL, shown_name
from .job_inputs import InputChangedError, check_unchanged
from .jobs import RenderJob, WorkerOptions, checkpoint_path
from .outputs import JOB_ID_KEY, SETTINGS_KEY, encode_png
from .worker_checkpoints import load_checkpoint, save_checkpoint

# Out-of-memory fallback: one image at a time with a short L-BFGS history
# (the history is 2 × history × pixels × 3 floats, the largest buffer after the
# activations). Never a smaller image: the output keeps the size asked for.
FALLBACK_HISTORY = 10
# Test hooks, fnmatch patterns on output names: raise CUDA's out-of-memory error
# on a first attempt, or kill this process as a segfault would (any device).
INJECT_OOM_ENV = "NST_TEST_INJECT_OOM"
INJECT_CRASH_ENV = "NST_TEST_INJECT_CRASH"


def share_cores(threads: int) -> None:
    """This worker's torch threads. Several CPU workers on one machine must
    share its cores: OpenMP threads that outnumber them spin against each
    other, many times slower."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


# Rough device memory one image needs, per output pixel: VGG19 activations kept
# for the backward pass plus the L-BFGS history. Used only to size GPU batches.
BYTES_PER_PIXEL_ESTIMATE = 8_000
GPU_MEMORY_SHARE = 0.7


def build_engine(device: str, options: WorkerOptions) -> Engine:
    if options.threads:
        share_cores(options.threads)
    cache = options.cache_dir if options.cache_dir is not None else "default"
    return Engine(
        device,
        cache_dir=cache,
        progress_every=options.progress_every,
        checkpoint_every=options.checkpoint_every,
    )


def local_device() -> str:
    """A Dask worker's device: each GPU worker is started with CUDA_VISIBLE_DEVICES naming its one card."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def max_batch_pixels(engine: Engine) -> int:
    """How many output pixels fit in one batch on this device (CPU: one image)."""
    if engine.device.type != "cuda":
        return 0  # 0 = no batching; on a CPU a batch only delays each image
    free, _ = torch.cuda.mem_get_info(engine.device)
    # Memory this process's caching allocator holds but no tensor uses is free to
    # us too; without it each batch would look smaller than the last one.
    free += torch.cuda.memory_reserved(engine.device) - torch.cuda.memory_allocated(engine.device)
    return int(free * GPU_MEMORY_SHARE / BYTES_PER_PIXEL_ESTIMATE)


def render_task(
    engine: Engine,
    jobs: Sequence[RenderJob],
    options: WorkerOptions,
    *,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    inputs: dict[str, bytes] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Render `jobs` (one batch when they are compatible); one result dict per job.

    `inputs` maps image paths to their bytes when the files are not on this
    machine (Dask workers on other hosts). `on_result` gets each result as soon
    as its group is done, so a later group that crashes the process cannot take
    finished images with it.
    """
    _maybe_crash(jobs)
    results: dict[str, dict[str, Any]] = {}

    def finish(job: RenderJob, record: dict[str, Any]) -> None:
        results[job.job_id] = record
        if on_result is not None:
            on_result(record)

    ready: list[tuple[RenderJob, RenderRequest]] = []
    for job in jobs:
        try:
            ready.append((job, _request(job, options, inputs or {})))
        except (EngineError, InputChangedError) as error:
            finish(job, _failed(engine, job, str(error)))
        except Exception as error:  # a bug, not a bad input: this job fails, the others go on
            finish(job, internal_error(engine, job, error))
    fresh = [(j, r) for j, r in ready if r.resume is None]
    resumed = [[(j, r)] for j, r in ready if r.resume is not None]  # alone: own start point
    for group in ([fresh] if fresh else []) + resumed:
        try:
            outcomes = _render_group(engine, group, options, on_progress, should_cancel)
        except Exception as error:  # a bug, not a bad input: this group fails, the others go on
            outcomes = [(job, internal_error(engine, job, error)) for job, _ in group]
        for job, outcome in outcomes:
            finish(job, outcome)
    return [results[job.job_id] for job in jobs]


def internal_error(engine: Engine | None, job: RenderJob, error: BaseException) -> dict[str, Any]:
    """The result of a job that hit a bug (not a bad input): failed, with the exception's last line."""
    base = _base(engine, job) if engine is not None else {"job_id": job.job_id, "worker_pid": os.getpid()}
    return {**base, "status": "failed", "error": internal_error_reason(error)}


def _request(job: RenderJob, options: WorkerOptions, inputs: dict[str, bytes]) -> RenderRequest:
    base = Path(options.manifest_dir) if options.manifest_dir else None

    def load(path: str, label: str = ""):
        # Named as `nst plan` names it: "photos/cat.jpg", not "cat.jpg".
        name = label + shown_name(path, base)
        # Read once: the bytes checked against the job id are the bytes decoded.
        data = inputs[path] if path in inputs else read_image_file(path, name=name)
        check_unchanged(job, path, data)
        return load_image(data, name=name)

    content = load(job.content)
    styles = tuple(load(s) for s in job.styles)
    # Checked here, where the files' names are known, so the message names the
    # file; `nst plan` runs the same check on the headers.
    check_render_sizes(job.settings, (shown_name(job.content, base), content.size),
                       [(shown_name(path, base), image.size) for path, image in zip(job.styles, styles)])
    init = job.settings.init_file()
    # Named as the init image: "zero.jpg is empty" sends a user to the photos.
    init_image = load(init, INIT_LABEL) if init else None
    return RenderRequest(content, styles, job.settings, load_checkpoint(options, job), init_image)


def _render_group(engine, group, options, on_progress, should_cancel):
    jobs = [job for job, _ in group]
    requests = [request for _, request in group]
    started = time.perf_counter()
    fallback = None
    try:
        outcomes = _attempt(engine, jobs, requests, options, on_progress, should_cancel, first=True)
    except RenderCancelledError:
        return [(job, _interrupted(engine, job)) for job in jobs]
    if outcomes is None:  # out of memory
        fallback = f"one image at a time, lbfgs_history={FALLBACK_HISTORY}"
        outcomes = _memory_fallback(engine, jobs, requests, options, on_progress, should_cancel)
    seconds = time.perf_counter() - started
    for job, outcome in zip(jobs, outcomes):
        if isinstance(outcome, RenderDivergedError):  # resumed, it would blow up again
            checkpoint_path(options.output_dir, job.job_id).unlink(missing_ok=True)
    return [
        (job, _interrupted(engine, job) if isinstance(outcome, RenderCancelledError)
         else _result(engine, job, outcome, seconds, fallback))
        for job, outcome in zip(jobs, outcomes)
    ]


def _attempt(engine, jobs, requests, options, on_progress, should_cancel, *, first=False):
    """The batch's outcomes, or None if it ran out of memory.

    The retry must happen outside the `except` block: the exception's traceback
    pins the frames of the failed attempt, and with them its activations, so
    empty_cache() could not give that memory back while the block runs.
    """
    try:
        if first:
            _maybe_inject_oom(jobs)
        return _batch(engine, jobs, requests, options, on_progress, should_cancel)
    except torch.OutOfMemoryError:
        return None


def _batch(engine, jobs, requests, options, on_progress, should_cancel):
    def report(step) -> None:
        if on_progress is not None:
            on_progress(
                {"job_ids": [j.job_id for j in jobs], "done": step.done, "total": step.total,
                 "stage": step.stage, "stages": step.stages, "losses": list(step.losses)}
            )

    def save(index: int, checkpoint: Checkpoint) -> None:
        if options.checkpoint_every:
            save_checkpoint(options, jobs[index], checkpoint)

    try:
        return engine.render_batch(
            requests, on_step=report, should_cancel=should_cancel, on_checkpoint=save
        )
    except RenderCancelledError:
        raise  # an EngineError too, but not a failure: the job resumes next run
    except EngineError as error:  # a problem shared by the whole batch (e.g. weights)
        return [error] * len(jobs)


def _memory_fallback(engine, jobs, requests, options, on_progress, should_cancel):
    """Each image of the batch alone. A stop keeps the images already finished;
    the one it cuts short and those not started come back as the cancel, and
    resume next run."""
    _free_device_memory(engine)
    outcomes: list = []
    for index, (job, request) in enumerate(zip(jobs, requests)):
        history = min(FALLBACK_HISTORY, request.settings.lbfgs_history)
        smaller = replace(request, settings=replace(request.settings, lbfgs_history=history))
        try:
            (outcome,) = _attempt(engine, [job], [smaller], options, on_progress, should_cancel) or (None,)
        except RenderCancelledError as cancelled:
            return outcomes + [cancelled] * (len(jobs) - index)
        if outcome is None:
            _free_device_memory(engine)
            w, h = request.content.size
            outcome = EngineError(
                f"out of memory on {engine.device} ({engine.device_name}) rendering up to "
                f"{request.settings.size} px (content {w}×{h}), even one image at a time "
                f"with lbfgs_history={FALLBACK_HISTORY}"
            )
        outcomes.append(outcome)
    return outcomes


def _free_device_memory(engine: Engine) -> None:
    if engine.device.type == "cuda":
        torch.cuda.empty_cache()


def _maybe_crash(jobs: Sequence[RenderJob]) -> None:
    pattern = os.environ.get(INJECT_CRASH_ENV)
    if pattern and any(fnmatch.fnmatch(job.output_name, pattern) for job in jobs):
        os.kill(os.getpid(), signal.SIGKILL)


def _maybe_inject_oom(jobs: Sequence[RenderJob]) -> None:
    """Test hook: raise CUDA's out-of-memory error on a first attempt, on any device."""
    pattern = os.environ.get(INJECT_OOM_ENV)
    if pattern and any(fnmatch.fnmatch(job.output_name, pattern) for job in jobs):
        raise torch.OutOfMemoryError(f"injected by {INJECT_OOM_ENV}")


def _result(engine, job, outcome, seconds, fallback) -> dict[str, Any]:
    if isinstance(outcome, Exception):
        return _failed(engine, job, str(outcome))
    stats = outcome.stats.to_dict()
    # The whole job's, as the engine's `seconds` is: with the time the runs
    # before a resume spent reaching its checkpoint.
    stats["wall_seconds"] = round(seconds + stats["seconds_before_resume"], 3)
    return {
        **_base(engine, job),
        "status": "done",
        "png": encode_png(outcome.image, _png_text(job)),
        "stats": stats,
        "memory_fallback": fallback,
    }


def _png_text(job: RenderJob) -> dict[str, str]:
    """The job id and settings ride in the PNG, so a file explains itself and a
    rerun can tell a finished output from a stale one."""
    return {JOB_ID_KEY: job.job_id, SETTINGS_KEY: json.dumps(job.settings.to_dict(), sort_keys=True)}


def _base(engine: Engine, job: RenderJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "worker_pid": os.getpid(),
        "device": str(engine.device),
        "device_name": engine.device_name,
    }


def _failed(engine: Engine, job: RenderJob, message: str) -> dict[str, Any]:
    reason = " ".join(message.split()) or "unknown error"
    return {**_base(engine, job), "status": "failed", "error": reason}


def _interrupted(engine: Engine, job: RenderJob) -> dict[str, Any]:
    return {**_base(engine, job), "status": "interrupted", "error": INTERRUPTED_REASON}
