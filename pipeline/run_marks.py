"""What nst.log says of each run's start and end, and of the run before it.

Read in the morning, the log must tell one night from the next on its own: what
each run was asked to do, by which process, how it ended, and which run never
ended at all. A pulled plug writes no last line, so the next run says so: a
summary.json whose `exit_code` is still null was left by a run that was killed
outright (the lock is ours, so it is not still running).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from .display import LOG_ONLY
from .labels import count
from .outputs import read_summary
from .run_values import compact_devices
from .stop_signals import EXIT_SIGNAL

if TYPE_CHECKING:
    from .manifest import Manifest
    from .run_options import RenderOptions

log = logging.getLogger("nst")

EXIT_MEANINGS = {0: "every job asked for is done", 1: "some jobs failed", 2: "refused: a usage or input problem",
                 129: "stopped by SIGHUP", 130: "stopped by Ctrl-C", 143: "stopped by SIGTERM"}


def note_run_start(manifest: Manifest, options: RenderOptions) -> bool:
    """The run's own first line (the log only), and a warning if the last run here
    never ended or rendered another manifest. True in that last case."""
    last = read_summary(manifest.output_dir)
    log.info("run started: %s (pid %d on %s)", command_line(manifest, options), os.getpid(),
             socket.gethostname(), extra=LOG_ONLY)
    if last.get("started_at") and "exit_code" in last and last["exit_code"] is None:
        manifest_name = Path(str(last.get("manifest") or "?")).name
        log.warning("the last run here (%s, started %s) never ended: it was killed, or the machine went "
                    "down; this run takes up what it left", manifest_name, last["started_at"])
    other = other_manifest(manifest, last)
    if other:
        log.warning("%s", shared_folder_warning(other))
    return other is not None


def other_manifest(manifest: Manifest, last: dict | None = None) -> str | None:
    """The manifest the last run in this output folder rendered, where it is not
    this one and is still there: one renamed or deleted since (`mv gallery.yaml
    museum.yaml`) shares nothing any more. `last`: that run's summary.json,
    where the caller has read it."""
    rendered = (read_summary(manifest.output_dir) if last is None else last).get("manifest")
    if not isinstance(rendered, str) or not rendered or rendered == str(manifest.path):
        return None
    return rendered if Path(rendered).is_file() else None


def shared_folder_warning(other: str) -> str:
    # Two cron lines copied with one `output:` take turns at one sheet and summary.json,
    # and each run's sweep took the other's checkpoints for stale ones.
    return (f"the last run in this output folder rendered another manifest, {other}: manifests sharing a "
            "folder take turns at its sheet and summary.json; give each its own `output:` (this run "
            "keeps the checkpoints of jobs not in its manifest)")


def note_run_end(code: int | None, error: BaseException | None = None) -> None:
    """The run's own last line (the log only): its exit code, or the error that ended it."""
    if code is None:
        reason = " ".join(str(error).split()) or type(error).__name__
        log.info("run ended by an error: %s", reason, extra=LOG_ONLY)
        return
    meaning = EXIT_MEANINGS.get(code)
    log.info("run ended: exit code %d%s", code, f" ({meaning})" if meaning else "", extra=LOG_ONLY)


def command_line(manifest: Manifest, options: RenderOptions) -> str:
    """The render as a command (from its options, so an in-process run says the same)."""
    words = ["nst", "render", str(manifest.path)]
    if options.devices:
        words += ["--devices", compact_devices(options.devices)]
    if options.cluster:
        words += ["--cluster", options.cluster]
    if options.only:
        words += ["--only", options.only]
    if options.force:
        words.append("--force")
    if options.job_timeout:
        words += ["--job-timeout", f"{options.job_timeout:g}"]
    if options.quiet:
        words.append("--quiet")
    return shlex.join(words)


def next_run(failed: int, unfinished: int, *, after_only: bool = False, kept_earlier: int = 0) -> str:
    """What the next run of the manifest will do: it tries failed jobs again and
    renders interrupted and unstarted ones. Said as such: "10 failed, 10 jobs
    still to render" read as twenty jobs not done. The counts are the whole
    manifest's; after a run limited by --only (`after_only`) the line says so,
    or "2 failed; the next run tries 6 failed jobs again" reads as a miscount.
    `kept_earlier`: this run's --force re-renders that failed or were stopped,
    whose earlier images stay and count as done."""
    kept = ""
    if kept_earlier:  # shown done, so in no count above: without this, "nothing left" read as all re-rendered
        one = kept_earlier == 1
        kept = (f"; {count(kept_earlier, '--force re-render')} did not complete and "
                + ("keeps its earlier image (only --force renders it again)" if one else
                   "keep their earlier images (only --force renders them again)"))
    if not failed and not unfinished:
        return "nothing left for the next run" + kept
    parts = ([f"tries {count(failed, 'failed job')} again"] if failed else []) + (
        [f"renders {count(unfinished, 'unfinished job')}"] if unfinished else [])
    return ("the next run without --only " if after_only else "the next run ") + " and ".join(parts) + kept


def note_stopped_while_planning(manifest: Manifest, signum: int) -> None:
    """A signal before any worker started (reading every photo's header, moving
    renamed outputs): nothing rendered. summary.json says so all the same; left
    alone, a script reading it after the run would find the run before's,
    perhaps `exit_code: 0`, and the next run would not know this one ended."""
    from .recorder import Recorder  # the sheet's code: only now, not for every run mark

    log.warning("received %s while planning: nothing rendered", signal.Signals(signum).name)
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title=manifest.path.stem,
                        manifest=str(manifest.path))
    recorder.write_summary(EXIT_SIGNAL[signum], [], skipped=0)
