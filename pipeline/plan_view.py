"""`nst plan` / `--dry-run`: the job table, what is done, what is cached, how long."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from .checkpoint_sweep import checkpoint_files, stale_note
from .devices import cpu_oversubscription, emulated_bf16, torchvision_download
from .display import job_name
from .estimate import content_longest_sides, describe, planned_sides
from .input_checks import input_problems
from .jobs import RenderJob
from .labels import ShownNames, cell_tags, count, setting_parts
from .lock import running_render
from .manifest import Manifest
from .outputs import output_problem, read_results
from .renames import unclaimed_outputs
from .run_marks import other_manifest, shared_folder_warning
from .scheduler import Plan

# Input problems listed one per line; a folder of broken files would otherwise
# bury the table.
PROBLEM_LINES = 10
COLUMNS = ("#", "status", "content", "style", "variant", "size", "iters", "schedule", "job id")
# In a narrow terminal these stay whole: what a row is, and the id --only takes.
# The names give way first (cut with "…"); the sizes and schedules wrap.
WHOLE_COLUMNS = frozenset({"#", "status", "iters", "job id"})
WRAPPING_COLUMNS = frozenset({"size", "schedule"})
# Rows listed unless asked for all: several screens' worth. A sweep of 24,000
# jobs took 20 s to draw in full, and nobody reads that in a terminal.
PLAN_ROWS = 200


def print_plan(console: Console, manifest: Manifest, the_plan: Plan, renamed: Mapping[str, Path] | None = None,
               row_limit: int | None = PLAN_ROWS, device_types: Collection[str] = ("cpu", "cuda"),
               devices: tuple[str, ...] | None = None) -> None:
    """The job table (the first `row_limit` rows, jobs to do first; None: all),
    then one line of totals over every job. `renamed`: jobs to do whose output
    is complete under an older name; the render moves them (renames.py).
    `device_types`: where the run's workers may be, for the cached-style count;
    `devices`: the workers it would start, where known, for the estimate."""
    renamed = renamed or {}
    the_plan = the_plan.with_done(renamed)
    done_ids = {job.job_id for job in the_plan.done}
    order = list(the_plan.todo) + list(the_plan.done)
    listed = order if row_limit is None else order[:row_limit]
    content_sides = content_longest_sides(the_plan.todo + tuple(listed))
    # Two photos named cat.jpg and cat.png are both labelled "cat": show which is
    # which, over the whole manifest so that --only does not change what a job is called.
    names = ShownNames(manifest.jobs)
    tags = cell_tags(manifest.jobs)
    # Failed last time: shown apart from the never tried, with why (a broken photo fails again).
    try:
        latest = read_results(manifest.output_dir)
    except OSError:  # said in one line by the estimate, which needs the folder's history, after the table
        latest = {}
    failed = [job for job in the_plan.todo if job.job_id not in renamed
              and latest.get(job.job_id, {}).get("status") == "failed"]
    failed_ids = {job.job_id for job in failed}
    # After a power cut the user asks what is lost: a job with a checkpoint
    # carries on from it, and shows so, apart from one that starts afresh.
    resuming = checkpoint_files(manifest.output_dir).keys()
    # Rendered before, yet to do: say why, or a hand-edited image is overwritten without a word.
    redo = {job.job_id: reason for job in the_plan.todo if job.job_id not in renamed and job.job_id not in failed_ids
            and (reason := _redo_reason(manifest.output_dir, job, latest.get(job.job_id)))}
    rows = []
    for index, job in enumerate(listed, start=1):
        status = ("rename" if job.job_id in renamed else "done" if job.job_id in done_ids
                  else "retry" if job.job_id in failed_ids else "resume" if job.job_id in resuming
                  else "redo" if job.job_id in redo else "todo")
        sides = planned_sides(job, content_sides)
        # The size it renders at: a smaller photo is not upscaled unless asked.
        size = str(sides[-1]) if sides[-1] == job.settings.size else f"{sides[-1]} (of {job.settings.size})"
        variant = [*setting_parts(job.variant), *([tags[job.job_id]] if job.job_id in tags else [])]
        rows.append({"#": str(index), "status": status, "content": names.contents[job.content],
                     "style": names.style(job), "variant": "; ".join(variant) or "-", "size": size,
                     "iters": str(job.settings.iterations), "schedule": "→".join(str(x) for x in sides),
                     "job id": job.job_id})
    console.print(_table(console, f"{manifest.path.name} -> {manifest.output_dir}", rows))
    if len(listed) < len(order):
        _line(console, f"... and {count(len(order) - len(listed), 'more job')}; `nst plan --all` lists every one")
    summary = f"{len(the_plan.todo)} to render, {len(the_plan.done)} already done" + (
        f" ({len(renamed)} under an older name: the render renames them)" if renamed else "")
    if the_plan.todo:
        cached = _cached_styles(the_plan, content_sides, device_types)
        summary += (f"; style targets cached for {cached[0]} of {cached[1]} styles; "
                    + describe(the_plan, manifest.output_dir, content_sides, devices))
    else:
        summary += "; nothing to render"
    _line(console, summary)
    holder = running_render(manifest.output_dir)
    if holder:
        _line(console, f"note: a render is running in {manifest.output_dir} now ({holder}); "
                       "the jobs it has under way count as to do until they finish")
    if failed:
        example = failed[0]
        # A job timed out or killed mid-render keeps its periodic checkpoint: no work is lost.
        resumes = sum(1 for job in failed if job.job_id in resuming)
        resumed = ("" if not resumes else "; it carries on from its checkpoint" if len(failed) == 1
                   else f"; {resumes} of them carry on from their checkpoints" if resumes > 1
                   else "; 1 of them carries on from its checkpoint")
        _line(console, f"note: {count(len(failed), 'job')} failed on {'its' if len(failed) == 1 else 'their'} "
                       f"last try and {'renders' if len(failed) == 1 else 'render'} again (retry{resumed}), e.g. "
                       f"{job_name(example)}: {latest[example.job_id].get('error') or 'no reason recorded'}")
    if redo:
        example = next(job for job in the_plan.todo if job.job_id in redo)
        _line(console, f"note: {count(len(redo), 'job')} rendered before {'renders' if len(redo) == 1 else 'render'} "
                       f"again (redo), e.g. {example.output_name}: {redo[example.job_id]}")
    _print_input_problems(console, manifest, the_plan, every=row_limit is None)
    warnings = [torchvision_download(the_plan.todo)]
    if devices and the_plan.todo:
        warnings += [cpu_oversubscription(devices), emulated_bf16(the_plan.todo, devices)]
    for warning in filter(None, warnings):
        _line(console, f"warning: {warning}", style="yellow")
    smaller = sum(1 for job in the_plan.todo if planned_sides(job, content_sides)[-1] < job.settings.size)
    if smaller:
        _line(console, f"note: {count(smaller, 'job')} to render {'comes' if smaller == 1 else 'come'} out smaller "
                       "than the size asked for: the photos are smaller, and upscale is off")
        repeats = same_renders(the_plan.todo, content_sides)
        if repeats:
            job, first = repeats[0]
            _line(console, f"note: {count(len(repeats), 'job')} to render {'repeats' if len(repeats) == 1 else 'repeat'} "
                           f"another job's image: a size sweep above the photo's own size renders it at that size "
                           f"each time, e.g. {job_name(first)} and {job_name(job)} both at "
                           f"{planned_sides(job, content_sides)[-1]} px (upscale: true renders the sizes asked for)")
    # --all (row_limit None) lists every copied file too, as it lists every job.
    for notice in manifest.shown_notices(every=row_limit is None):
        _line(console, f"note: {notice}")
    other = other_manifest(manifest)
    if other:
        _line(console, f"warning: {shared_folder_warning(other)}", style="yellow")
    # Said here, while reverting the setting can still save them; whole manifest, whatever --only says.
    stale = stale_note(manifest.output_dir, manifest.jobs)
    if stale:
        _line(console, f"note: {stale}")
    unclaimed = [path.relative_to(manifest.output_dir).as_posix()
                 for path in unclaimed_outputs(manifest.output_dir, manifest.jobs)]
    if unclaimed:
        # They are the user's to delete by hand: two are named, and --all lists every one.
        listed_below = len(unclaimed) > 2 and row_limit is None
        which, more = ", ".join(unclaimed), ""
        if listed_below:
            which = "listed below"
        elif len(unclaimed) > 2:
            which, more = f"e.g. {', '.join(unclaimed[:2])}", "; `nst plan --all` lists every one"
        _line(console, f"note: {count(len(unclaimed), 'image')} in {manifest.output_dir} "
                       f"{'belongs' if len(unclaimed) == 1 else 'belong'} to no job of this manifest "
                       f"({why_unclaimed(other)}), {which}; no run deletes them{more}")
        for name in unclaimed if listed_below else []:
            _line(console, f"  {name}")


def _redo_reason(output_dir: Path, job: RenderJob, latest: Mapping | None) -> str | None:
    """Why a job with files from an earlier render (or a `done` line) renders again; None if it never rendered."""
    png = output_dir / job.output_name
    problem = output_problem(png, job.job_id)
    if problem is None and not png.exists() and latest and latest.get("status") == "done" \
            and latest.get("output") == job.output_name:
        return "image and sidecar missing"
    return problem  # None too for a whole image that --force renders again


def why_unclaimed(other_manifest_here: str | None) -> str:
    """Why images in the output folder belong to no job: where the last run
    rendered another manifest, most are likely its own."""
    changed = "a setting or an input changed since"
    return f"{Path(other_manifest_here).name}'s, or {changed}" if other_manifest_here else changed


def same_renders(todo: Sequence[RenderJob], content_sides) -> list[tuple[RenderJob, RenderJob]]:
    """(job, a job of a smaller size asked for that renders the same image):
    the same photo, styles and settings but the size, which the photo's own
    size overrides for both, so both render at the same stages."""
    first: dict[tuple, RenderJob] = {}
    repeats = []
    for job in sorted(todo, key=lambda job: job.settings.size):  # stable: ties keep the plan's order
        settings = {**job.settings.to_dict(), "size": None}
        key = (job.content, job.styles, json.dumps(settings, sort_keys=True), planned_sides(job, content_sides))
        if key in first:
            repeats.append((job, first[key]))
        else:
            first[key] = job
    return repeats


def _table(console: Console, title: str, rows: list[dict[str, str]]) -> Table:
    """The job table, fitted to the terminal (a pipe gets 160 columns: cli.out).
    A variant column of dashes only is left out."""
    columns = [c for c in COLUMNS if c != "variant" or any(row["variant"] != "-" for row in rows)]
    # Terminal cells, not characters: マチュピチュ takes two cells a character.
    natural = {c: max(cell_len(text) for text in [c, *(row[c] for row in rows)]) for c in columns}
    # Boxed: a space each side of a cell and a line between. Where that does not
    # fit, no vertical lines (two spaces between columns), then narrower columns.
    if sum(natural.values()) + 3 * len(columns) + 1 <= console.width:
        widths, style = natural, {}
    else:
        widths = _fit(natural, console.width - 2 * (len(columns) - 1))
        style = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True}
    table = Table(title=title, title_justify="left", **style)
    for column in columns:
        # A cut name ends in "…"; a cut size or schedule folds onto a second line.
        overflow = "fold" if column in WRAPPING_COLUMNS else "ellipsis"
        table.add_column(column, width=widths[column], no_wrap=column not in WRAPPING_COLUMNS, overflow=overflow)
    for row in rows:
        table.add_row(*(row[column] for column in columns))
    return table


def _fit(natural: dict[str, int], room: int) -> dict[str, int]:
    """Column widths within `room`: the widest name loses a character at a
    time down to 8, then the sizes and schedules down to 7; the whole columns never shrink."""
    widths = dict(natural)
    for floor, shrinkable in ((8, [c for c in widths if c not in WHOLE_COLUMNS | WRAPPING_COLUMNS]),
                              (7, [c for c in widths if c in WRAPPING_COLUMNS])):
        while sum(widths.values()) > room:
            widest = max(shrinkable, key=widths.__getitem__, default=None)
            if widest is None or widths[widest] <= floor:
                break
            widths[widest] -= 1
    return widths


def _line(console: Console, text: str, style: str | None = None) -> None:
    """One line of text as written: never wrapped by the console (a terminal
    wraps it itself; a pipe or cron's mail keeps it whole, for grep)."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _print_input_problems(console: Console, manifest: Manifest, the_plan: Plan, *, every: bool = False) -> None:
    """A warning per input that will fail its jobs: the plan is where it can
    still be fixed. The first PROBLEM_LINES, or with --all (`every`) each one."""
    problems = input_problems(the_plan.todo, manifest.path.parent)
    shown = problems if every else problems[:PROBLEM_LINES]
    for problem in shown:
        # One line, as the failed job's reason is (a newline in a file name split it).
        reason = " ".join(problem.reason.split())
        _line(console, f"warning: {count(problem.jobs, 'job')} will fail: {reason}", style="yellow")
    if len(problems) > len(shown):
        more = sum(problem.jobs for problem in problems[len(shown):])
        _line(console, f"warning: ... and {count(more, 'more job')} will fail on "
                       f"{count(len(problems) - len(shown), 'more input problem')}; `nst plan --all` lists every one",
              style="yellow")


def _cached_styles(the_plan: Plan, content_sides: Mapping[str, int | None],
                   device_types: Collection[str]) -> tuple[int, int]:
    """How many distinct styles of the plan already have a disk cache entry at their final size."""
    from .cache_admin import cached_style_count

    styles = {(style, job.settings, planned_sides(job, content_sides)[-1])
              for job in the_plan.todo for style in job.styles}
    return cached_style_count(styles, device_types), len({style for style, _, _ in styles})
