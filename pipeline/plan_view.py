"""`nst plan` / `--dry-run`: the job table, what is done, what is cached, how long."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .estimate import content_longest_sides, describe, planned_sides
from .input_checks import input_problems
from .labels import ShownNames
from .manifest import Manifest
from .scheduler import Plan

# Input problems listed one per line; a folder of broken files would otherwise
# bury the table.
PROBLEM_LINES = 10
# Rows listed unless asked for all: several screens' worth. A sweep of 24,000
# jobs took 20 s to draw in full, and nobody reads that in a terminal.
PLAN_ROWS = 200


def print_plan(console: Console, manifest: Manifest, the_plan: Plan, renamed: Mapping[str, Path] | None = None,
               row_limit: int | None = PLAN_ROWS, device_types: Collection[str] = ("cpu", "cuda")) -> None:
    """The job table (the first `row_limit` rows, jobs to do first; None: all),
    then one line of totals over every job. `renamed`: jobs to do whose output
    is complete under an older name; the render moves them (renames.py).
    `device_types`: where the run's workers may be, for the cached-style count."""
    renamed = renamed or {}
    the_plan = the_plan.with_done(renamed)
    done_ids = {job.job_id for job in the_plan.done}
    table = Table(title=f"{manifest.path.name} -> {manifest.output_dir}", title_justify="left")
    for column in ("#", "status", "content", "style", "variant", "size", "iters", "schedule", "job id"):
        table.add_column(column, no_wrap=True)
    order = list(the_plan.todo) + list(the_plan.done)
    listed = order if row_limit is None else order[:row_limit]
    content_sides = content_longest_sides(the_plan.todo + tuple(listed))
    # Two photos named cat.jpg and cat.png are both labelled "cat": show which is
    # which, over the whole manifest so that --only does not change what a job is called.
    names = ShownNames(manifest.jobs)
    for index, job in enumerate(listed, start=1):
        status = "rename" if job.job_id in renamed else "done" if job.job_id in done_ids else "todo"
        sides = planned_sides(job, content_sides)
        # The size it renders at: a smaller photo is not upscaled unless asked.
        size = str(sides[-1]) if sides[-1] == job.settings.size else f"{sides[-1]} (of {job.settings.size})"
        table.add_row(
            str(index), status, names.contents[job.content], names.style(job), job.variant or "-",
            size, str(job.settings.iterations), "→".join(str(x) for x in sides), job.job_id,
        )
    console.print(table)
    if len(listed) < len(order):
        console.print(f"... and {len(order) - len(listed)} more jobs; `nst plan --all` lists every one",
                      markup=False, highlight=False)
    summary = f"{len(the_plan.todo)} to render, {len(the_plan.done)} already done" + (
        f" ({len(renamed)} under an older name: the render renames them)" if renamed else "")
    if the_plan.todo:
        cached = _cached_styles(the_plan, content_sides, device_types)
        summary += (f"; style targets cached for {cached[0]} of {cached[1]} styles; "
                    + describe(the_plan, manifest.output_dir, content_sides))
    else:
        summary += "; nothing to render"
    console.print(summary, markup=False, highlight=False)
    _print_input_problems(console, manifest, the_plan)
    smaller = sum(1 for job in the_plan.todo if planned_sides(job, content_sides)[-1] < job.settings.size)
    if smaller:
        console.print(f"note: {smaller} of the jobs to render come out smaller than their size: their photos "
                      "are smaller, and upscale is off", markup=False, highlight=False)
    for notice in manifest.notices:
        console.print(f"note: {notice}", markup=False, highlight=False)


def _print_input_problems(console: Console, manifest: Manifest, the_plan: Plan) -> None:
    """A warning per input that will fail its jobs: the plan is where it can still be fixed."""
    problems = input_problems(the_plan.todo, manifest.path.parent)
    for problem in problems[:PROBLEM_LINES]:
        jobs = "1 job" if problem.jobs == 1 else f"{problem.jobs} jobs"
        console.print(f"warning: {jobs} will fail: {problem.reason}", style="yellow", markup=False, highlight=False)
    if len(problems) > PROBLEM_LINES:
        more = sum(problem.jobs for problem in problems[PROBLEM_LINES:])
        console.print(f"warning: ... and {more} more jobs will fail on {len(problems) - PROBLEM_LINES} more input problems",
                      style="yellow", markup=False, highlight=False)


def _cached_styles(the_plan: Plan, content_sides: Mapping[str, int | None],
                   device_types: Collection[str]) -> tuple[int, int]:
    """How many distinct styles of the plan already have a disk cache entry at their final size."""
    from .cache_admin import cached_style_count

    styles = {(style, job.settings, planned_sides(job, content_sides)[-1])
              for job in the_plan.todo for style in job.styles}
    return cached_style_count(styles, device_types), len({style for style, _, _ in styles})
