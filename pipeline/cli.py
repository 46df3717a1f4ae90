"""The `nst` command. This module, display.py (the run's log and bars) and the
lock's one "waiting" line are all that talk to the terminal.

A user's mistake (bad manifest, busy folder, unknown device) is one line on
stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .cli_errors import err, fail, one_line_errors
from .errors import ManifestError, OutputFolderError, PipelineError
from .labels import close_selection, select
from .lock import OutputLockedError, check_output_folder
from .manifest import Manifest, load_manifest, resolve_manifest_path
from .plan_view import PLAN_ROWS, print_plan
from .run import EXIT_BUSY, EXIT_USAGE, execute, make_plan, pending_renames
from .run_options import (
    RenderOptions,
    cluster_address,
    planned_device_types,
    planned_devices,
    requested_devices,
)

# -h as well as --help: what most command-line tools take, and what users try first.
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    help="Batch neural style transfer: render a YAML manifest of contents × styles into a gallery.",
)
cache_app = typer.Typer(help="Inspect or clear the style-target cache ($NST_CACHE_DIR, else $XDG_CACHE_HOME/nst or ~/.cache/nst).",
                        no_args_is_help=True,
                        context_settings=HELP_OPTIONS)
app.add_typer(cache_app, name="cache")
# Wide enough for the plan table when stdout is a file or a pipe (cron mail).
out = Console(width=None if sys.stdout.isatty() else 160)

MANIFESTS_DIR = Path(__file__).resolve().parent.parent / "manifests"
ManifestArg = Annotated[str, typer.Argument(metavar="MANIFEST", help="Manifest file, or a bare name: NAME.yaml here, else in manifests/ (e.g. demo).")]
# One definition, so `nst plan --help` and `nst render --help` explain --only alike.
OnlyOption = Annotated[str | None, typer.Option(metavar="GLOB", help="Only jobs whose output name, job id, content or style (label or file name) or variant (style_weight=5, as the plan shows it) matches this glob.")]


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("nst-gallery")
    except PackageNotFoundError:  # a checkout run without `pip install -e .`
        number = "unknown (not installed)"
    out.print(f"nst {number}", markup=False, highlight=False)
    raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, metavar="",
                                          help="Print the version and exit.")] = False,
) -> None:
    # Options that come before any command; eager --version exits in its callback.
    pass


def _load(name: str):
    try:
        return load_manifest(resolve_manifest_path(name, MANIFESTS_DIR))
    except ManifestError as error:
        for line in str(error).splitlines():
            err.print(line, markup=False, highlight=False)
        raise typer.Exit(EXIT_USAGE) from None


def _check_output(loaded, *, reading_will_do: bool = False) -> None:
    """Stop here (exit 2) if the output folder cannot hold a run. `nst plan` only
    reads it: a finished gallery on a read-only share gets its table and a note."""
    try:
        check_output_folder(loaded.output_dir)
    except OutputFolderError as error:
        problem = str(loaded.output_problem(str(error)))
        if not (reading_will_do and error.readable):
            fail(problem, EXIT_USAGE)
        err.print(f"nst: note: {problem} (nst render would stop there)", markup=False, highlight=False)


@app.command()
def render(
    manifest: ManifestArg,
    devices: Annotated[str | None, typer.Option(metavar="DEVICES", help="cuda:0,cuda:2 · cpu · cpu*2 · cuda (all). Default: every GPU, else the CPU.")] = None,
    cluster: Annotated[str | None, typer.Option(metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Render again even if an output is up to date.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="Print the plan and exit.")] = False,
    only: OnlyOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Only warnings and errors.")] = False,
    wait: Annotated[bool, typer.Option("--wait", metavar="", help="If another run holds the output folder, wait for it.")] = False,
    job_timeout: Annotated[float | None, typer.Option(metavar="SECONDS", help="Seconds a job may run (a batch of N: N × this) before it is stopped and failed.")] = None,
) -> None:
    """Render every job of MANIFEST that is not already done."""
    with one_line_errors():
        loaded = _load(manifest)
        _check_only(loaded, only)
        _check_run_flags(cluster=cluster, job_timeout=job_timeout)
        if devices is not None and cluster is not None:
            fail("--devices and --cluster: give one (a cluster's workers use their own devices)", EXIT_USAGE)
        options = RenderOptions(devices=_devices(devices), cluster=cluster, force=force, only=only,
                                quiet=quiet, wait=wait, job_timeout=job_timeout)
        _check_output(loaded)
        _check_cuda(*requested_devices(loaded, options), cluster_address(loaded, options))
        if dry_run:
            _print_plan(loaded, options)
            return
        try:
            code = execute(loaded, options)
        except OutputLockedError as error:
            fail(str(error), EXIT_BUSY)
        except OutputFolderError as error:  # a folder that changed since the check
            fail(str(loaded.output_problem(str(error))), EXIT_USAGE)
        except PipelineError as error:
            fail(str(error), EXIT_USAGE)
    raise typer.Exit(code)


def _check_only(loaded, only: str | None) -> None:
    # `--only "$JOB"` with JOB unset would take every job: with --force, a whole gallery again.
    if only is not None and not only.strip():
        fail(f"--only {only!r} is empty: give a name or a glob, or leave --only out for every job", EXIT_USAGE)
    # A glob that matches nothing is a typo; "nothing to render" would hide it.
    if only and not select(loaded.jobs, only):
        # The wildcard form is offered only where it would pick something.
        wider, close = f"*{only}*", close_selection(loaded.jobs, only)
        if close:
            hint = f"; did you mean '{close}'?"
        else:
            hint = "" if set("*?[") & set(only) or not select(loaded.jobs, wider) else (
                f"; for part of a name, use a wildcard: '{wider}'")
        fail(f"--only {only!r} matches none of the {len(loaded.jobs)} jobs (it is matched against output "
              f"names, job ids, variants, and the names the plan gives photos and paintings{hint})", EXIT_USAGE)


def _check_run_flags(**flags) -> None:
    """The flags that stand in for `run:` keys obey the manifest's rules, checked
    before anything runs (a bad --cluster was a traceback after a 40 s wait)."""
    from .manifest_schema import check_run_flags

    problems = check_run_flags(**flags)
    if problems:
        fail("; ".join(problems), EXIT_USAGE)


def _devices(spec: str | None):
    if spec is None:
        return None
    from .run_values import parse_devices

    try:
        return parse_devices(spec)
    except ValueError as error:
        fail(f"--devices: {error}", EXIT_USAGE)


def _check_cuda(devices, source: str, cluster, note_only: bool = False) -> None:
    # Checked before anything else happens, and even when nothing needs rendering:
    # a typo in a cron line must not wait for the first night with work to show.
    # The probe runs in a child: this process stays torch-free. `nst plan` only
    # notes it: the plan may be read on a login node and rendered on a GPU node.
    if cluster or not devices or not any(d.startswith("cuda") for d in devices):
        return
    from .devices import resolve_devices

    try:
        resolve_devices(devices, source)
    except PipelineError as error:
        if not note_only:
            fail(str(error), EXIT_USAGE)
        err.print(f"nst: note: {error} (nst render would stop there)", markup=False, highlight=False)


@app.command()
def plan(manifest: ManifestArg, only: OnlyOption = None,
         every_job: Annotated[bool, typer.Option("--all", metavar="", help=f"List every job (not only the first {PLAN_ROWS}), every copied file and every image no job makes.")]
         = False) -> None:
    """Show the job table: what is done, what is cached, the estimated time."""
    with one_line_errors():
        loaded = _load(manifest)
        _check_only(loaded, only)
        _check_output(loaded, reading_will_do=True)
        options = RenderOptions(only=only)
        _check_cuda(*requested_devices(loaded, options), cluster_address(loaded, options), note_only=True)
        _print_plan(loaded, options, row_limit=None if every_job else PLAN_ROWS)


def _print_plan(manifest: Manifest, options: RenderOptions, row_limit: int | None = PLAN_ROWS) -> None:
    the_plan = make_plan(manifest, options)
    print_plan(out, manifest, the_plan, pending_renames(manifest, options, the_plan), row_limit=row_limit,
               device_types=planned_device_types(manifest, options),
               devices=planned_devices(manifest, options, len(the_plan.todo)))


@app.command()
def report(output_dir: Annotated[Path, typer.Argument(metavar="OUTPUT_DIR", help="An output folder of an earlier run.")],
           manifest: Annotated[str | None, typer.Option(metavar="MANIFEST", help="The manifest to lay the sheet out by. Default: the last run's.")] = None,
           wait: Annotated[bool, typer.Option("--wait", metavar="", help="If a run holds the output folder, wait for it.")] = False,
           ) -> None:
    """Rebuild index.html: laid out by the manifest given, else by the one the last run recorded (if it is gone, by results.jsonl; if it no longer loads, an error)."""
    from .rebuild import rebuild_report, recorded_manifest

    with one_line_errors():
        try:
            loaded, source = (_load(manifest), "") if manifest else recorded_manifest(output_dir)
            path = rebuild_report(output_dir, loaded, wait=wait)
        except OutputLockedError as error:
            fail(str(error), EXIT_BUSY)
        except PipelineError as error:
            fail(str(error), EXIT_USAGE)
    out.print(f"wrote {path}" + (f" ({source})" if source else ""), markup=False, highlight=False, soft_wrap=True)


@app.command()
def devices() -> None:
    """List the devices workers would use."""
    from .devices import cpu_info, probe_cuda_devices

    found = probe_cuda_devices()
    for info in found:
        out.print(f"{info.name}\t{info.label}\t{info.memory_gb} GiB", markup=False)
    if not found:
        out.print(f"cpu\t{cpu_info().label}\t(no CUDA device visible)", markup=False)


@cache_app.command("info")
def cache_info() -> None:
    """Where the cache is and how big."""
    from .cache_admin import cache_summary, cache_warning

    out.print(cache_summary(), markup=False)
    warning = cache_warning()
    if warning:
        err.print(f"nst: warning: {warning}", markup=False, highlight=False)


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached style target."""
    from .cache_admin import clear_cache

    out.print(clear_cache(), markup=False)


if __name__ == "__main__":  # `python -m pipeline.cli`; `nst` and `python -m pipeline` start in entry.py
    from .entry import main

    main()
