"""`nst plan` / `--dry-run`: the job table, what is done, what is cached, how long."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .manifest import Manifest
from .scheduler import Plan

# Seconds per iteration per megapixel of output on the project's 2-core
# development CPU with bf16 convolutions: the demo (4 jobs, 256 px, 80
# iterations) rendered in 61–81 s over the last rounds, 0.19–0.25 s per
# iteration for ~0.065 MP (2.9–3.8); rounded up, so the estimate errs long.
# A GPU is far faster; the estimate is labelled as a CPU figure.
CPU_SECONDS_PER_ITERATION_MEGAPIXEL = 4.0


def estimate_cpu_seconds(the_plan: Plan) -> float:
    total = 0.0
    for job in the_plan.todo:
        for side in job.settings.schedule():
            total += job.settings.iterations * (side * side / 1e6) * CPU_SECONDS_PER_ITERATION_MEGAPIXEL
    return total


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_plan(console: Console, manifest: Manifest, the_plan: Plan) -> None:
    done_ids = {job.job_id for job in the_plan.done}
    table = Table(title=f"{manifest.path.name} -> {manifest.output_dir}", title_justify="left")
    for column in ("#", "status", "content", "style", "variant", "size", "iters", "schedule", "job id"):
        table.add_column(column, no_wrap=True)
    order = list(the_plan.todo) + list(the_plan.done)
    for index, job in enumerate(order, start=1):
        status = "done" if job.job_id in done_ids else "todo"
        s = job.settings
        table.add_row(
            str(index), status, job.content_label, job.style_label, job.variant or "-",
            str(s.size), str(s.iterations), "→".join(str(x) for x in s.schedule()), job.job_id,
        )
    console.print(table)
    cached = _cached_styles(the_plan)
    console.print(
        f"{len(the_plan.todo)} to render, {len(the_plan.done)} already done; "
        f"style targets cached for {cached[0]} of {cached[1]} styles; "
        f"estimated {_duration(estimate_cpu_seconds(the_plan))} on one 2-core CPU worker",
        markup=False, highlight=False,
    )


def _cached_styles(the_plan: Plan) -> tuple[int, int]:
    """How many distinct styles of the plan already have a disk cache entry at their final size."""
    from .cache_admin import cached_style_count

    styles = {(style, job.settings) for job in the_plan.todo for style in job.styles}
    return cached_style_count(styles), len({style for style, _ in styles})
