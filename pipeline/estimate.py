"""How long a plan will take, for `nst plan` and `--dry-run`.

The best guide is the output folder's own history: `results.jsonl` holds the
seconds of every render done there, on the devices it actually ran on, and
`summary.json` names the devices of the last run. Without a history the
estimate falls back to a fixed, deliberately long CPU figure.

Work is counted as iterations × (longest side)² summed over the schedule's
stages, for the renders measured and the jobs to do alike, so the aspect
ratio cancels. The sides are those the engine will use: a photo smaller than
`size` renders at its own size unless `upscale`, which the plan learns from
each photo's header. Start-up and per-job costs (loading, saving, the sheet)
are added as fixed figures: they dominate a gallery of small renders.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nst_engine import cpu_model
from nst_engine.settings import RenderSettings

from .devices import side_by_side
from .input_checks import read_headers
from .jobs import RenderJob
from .outputs import read_results, read_summary
from .scheduler import Plan

# Seconds per iteration per megapixel of output on the project's 2-core
# development CPU with bf16 convolutions: the demo (4 jobs, 256 px, 80
# iterations) rendered in 61–81 s over the last rounds, 0.19–0.25 s per
# iteration for ~0.065 MP (2.9–3.8); rounded up, so the estimate errs long.
CPU_SECONDS_PER_ITERATION_MEGAPIXEL = 4.0
# In fp32, which `precision: auto` means on a CPU without native bf16: on a
# 2-core AVX2-only CPU the demo rendered in 185.7 s, ~8.5 s per unit once the
# start and per-job costs are taken off (bench row e2 on the bf16 CPU put bf16
# at 0.47–0.52× fp32's time); rounded up, as the figure above is.
CPU_FP32_SECONDS_PER_ITERATION_MEGAPIXEL = 10.0
RECENT_RENDERS = 20  # the speed is the median of this many of the latest renders
# A run's start (workers import torch and load the weights) and each job's own
# overhead, on the development CPU: ~2 s and ~0.25 s with the machine idle
# (4 jobs of 64 px); doubled, so the estimate errs long.
STARTUP_SECONDS = 5.0
PER_JOB_SECONDS = 0.5


@dataclass(frozen=True)
class MeasuredSpeed:
    seconds_per_unit: float  # device seconds per iteration-megapixel
    renders: int
    device_name: str


def work_units(settings: RenderSettings, sides: Sequence[int] | None = None) -> float:
    """Iterations × megapixels (longest side squared), over every stage
    (`sides`, else the settings' own schedule)."""
    return sum(settings.iterations * side * side / 1e6 for side in (sides or settings.schedule()))


def planned_sides(job: RenderJob, content_sides: Mapping[str, int | None]) -> tuple[int, ...]:
    """The stages the engine will render `job` at, as far as the plan can tell."""
    longest = content_sides.get(job.content)
    return job.settings.sides_for(longest) if longest else job.settings.schedule()


def content_longest_sides(jobs: Iterable[RenderJob]) -> dict[str, int | None]:
    """Each content image's longest side, from its header (None: unusable,
    which fails at render time with its own reason)."""
    headers = read_headers(job.content for job in jobs)
    # EXIF rotation keeps the longest side, so the stored size is enough.
    return {path: max(header) if isinstance(header, tuple) else None for path, header in headers.items()}


def describe(the_plan: Plan, output_dir: Path, content_sides: Mapping[str, int | None],
             devices: tuple[str, ...] | None = None) -> str:
    """'estimated …' for the plan's summary line. `devices`: the workers the run
    would start, where known; else the last run's devices stand in for them."""
    if not the_plan.todo:
        return "estimated 0 s"
    speed = measured_speed(output_dir)
    if speed is None:
        return _without_history(the_plan, content_sides)
    work = sum(work_units(job.settings, planned_sides(job, content_sides)) for job in the_plan.todo)
    device_seconds = work * speed.seconds_per_unit
    renders = "render" if speed.renders == 1 else f"{speed.renders} renders"
    basis = f"at the speed of this folder's last {renders} on {speed.device_name}"
    whose = "" if devices is not None else " like the last run's"
    lanes = side_by_side(devices if devices is not None else tuple(_last_run_devices(output_dir)))
    if lanes > 1:
        wall = device_seconds / lanes + _overhead(len(the_plan.todo), lanes)
        return (f"estimated {rough_duration(wall)} on {lanes} devices{whose} "
                f"({rough_duration(device_seconds)} of device time {basis})")
    return f"estimated {rough_duration(device_seconds + _overhead(len(the_plan.todo), 1))} {basis}"


def _without_history(the_plan: Plan, content_sides: Mapping[str, int | None]) -> str:
    """The development CPU's figure, at the precision each job would render at
    on this machine's CPU: bf16 only where the CPU has it natively."""
    native_bf16 = cpu_model.cpu_has_native_bf16()
    seconds, in_fp32 = _overhead(len(the_plan.todo), 1), 0
    for job in the_plan.todo:
        fast = native_bf16 and job.settings.resolved_precision("cpu", native_bf16) == "bf16"
        rate = CPU_SECONDS_PER_ITERATION_MEGAPIXEL if fast else CPU_FP32_SECONDS_PER_ITERATION_MEGAPIXEL
        seconds += rate * work_units(job.settings, planned_sides(job, content_sides))
        in_fp32 += not fast
    where = "a 2-core CPU's speed"
    if in_fp32:
        where += " in fp32" + ("" if native_bf16 else ", as this CPU has no native bf16")
    return f"estimated {rough_duration(seconds)} at {where} (no render here to measure yet)"


def _overhead(jobs: int, devices: int) -> float:
    return STARTUP_SECONDS + PER_JOB_SECONDS * jobs / devices


def measured_speed(output_dir: Path) -> MeasuredSpeed | None:
    """Seconds per unit of work of the latest renders, on the device the latest one used."""
    renders = []  # (finished at, device, seconds per unit), for the renders that can tell
    for record in read_results(output_dir).values():
        per_unit = _per_unit(record)
        if per_unit is not None:
            stats = record["stats"]
            device = stats.get("device_name") or stats.get("device", "?")
            renders.append((str(record.get("finished_at", "")), device, per_unit))
    if not renders:
        return None
    renders.sort(key=lambda render: render[0])
    latest_device = renders[-1][1]
    recent = [per_unit for _, device, per_unit in renders if device == latest_device][-RECENT_RENDERS:]
    return MeasuredSpeed(statistics.median(recent), len(recent), latest_device)


def _per_unit(record: dict[str, Any]) -> float | None:
    """Device seconds per unit of work of one finished render, or None if it cannot tell.
    A batch of N images shares its seconds; a resumed render did only part of its work."""
    stats = record.get("stats")
    if record.get("status") != "done" or not isinstance(stats, dict) or stats.get("resumed_from"):
        return None
    effective = record.get("effective") if isinstance(record.get("effective"), dict) else {}
    try:
        # The stages it really rendered (a small photo is not upscaled), where the record says.
        work = work_units(RenderSettings.from_dict(record["settings"]), effective.get("scales"))
        seconds = float(stats["seconds"]) / max(1, int(stats.get("batch_size") or 1))
    except (KeyError, TypeError, ValueError):  # a record from another version, or damaged
        return None
    return seconds / work if work > 0 and seconds > 0 else None


def _last_run_devices(output_dir: Path) -> list[str]:
    """The local devices the last run used (none for a Dask cluster: its size is not known here)."""
    devices = read_summary(output_dir).get("devices")
    if not isinstance(devices, list):
        return []
    devices = [str(d) for d in devices]
    return [] if any(d.startswith("dask:") for d in devices) else devices


def rough_duration(seconds: float) -> str:
    """An estimate's length, as round as the estimate is: "40 s", "12 min", "3.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
