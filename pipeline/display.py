"""What a person (or cron's mail) sees while a gallery renders.

In a terminal: rich progress bars, one overall with an ETA and one per worker,
with the run's milestones, warnings and errors printed above them. Without one
(cron, CI, a pipe): plain timestamped lines. Every line goes to `nst.log` in the
output folder either way.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .jobs import RenderJob

log = logging.getLogger("nst")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


# Pass as `extra=` on an INFO record that a person at a terminal should read
# above the progress bars (the run's start and end); warnings and errors always are.
TERMINAL = {"terminal": True}
# A line for nst.log alone (a run's start and end marks): stderr shows the run as it goes.
LOG_ONLY = {"log_only": True}


# nst.log keeps every run's lines; past this size a run starts a new one and
# the old one becomes nst.log.1 (replacing the one before), so a nightly cron
# job's log stays under twice this.
LOG_ROTATE_BYTES = 10 * 1024 * 1024


def _rotate(log_file: Path) -> bool:
    """Move a log past LOG_ROTATE_BYTES to LOG.1. Only a run calls this, under
    its output folder's lock, so no other process is writing the log."""
    try:
        if log_file.stat().st_size <= LOG_ROTATE_BYTES:
            return False
        log_file.replace(log_file.with_name(log_file.name + ".1"))
    except OSError:
        return False  # none yet, or not ours to move: keep appending
    return True


def setup_logging(log_file: Path | None, *, console: Console | None, quiet: bool) -> None:
    """nst.log gets everything. Without a terminal (console None), stderr gets
    plain timestamped lines; in one, the run's milestones, warnings and errors
    are printed through the Console that draws the bars. --quiet: warnings and
    errors only, either way, so cron mails only on trouble."""
    log.setLevel(logging.INFO)
    log.handlers.clear()
    log.propagate = False
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z")
    rotated = False
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            rotated = _rotate(log_file)
            handler = _QuietFileHandler(log_file, encoding="utf-8")
        except OSError as error:
            # A log left owned by root after one `sudo` run must not cost the
            # night: the run goes on, and says so where it can.
            print(f"nst: could not write {log_file}: {error.strerror or error}; "
                  "the run goes on without it", file=sys.stderr)
        else:
            handler.setFormatter(formatter)
            log.addHandler(handler)
    if console is None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
    else:
        stream = _ConsoleHandler(console)
    stream.setLevel(logging.WARNING if quiet else logging.INFO)
    stream.addFilter(lambda record: not getattr(record, "log_only", False))
    log.addHandler(stream)
    if rotated:
        log.info("the lines of earlier runs are in %s.1", log_file.name, extra=LOG_ONLY)


class _ConsoleHandler(logging.Handler):
    """Log lines in a terminal. They go through the rich Console of the live
    bars, which prints them above the bars and redraws the bars below; a plain
    write to stderr would tear the bars apart. Per-job and per-iteration INFO
    lines stay in nst.log: the bars already show them."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or bool(getattr(record, "terminal", False))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix, style = "", None
            if record.levelno >= logging.ERROR:
                prefix, style = "error: ", "red"
            elif record.levelno >= logging.WARNING:
                prefix, style = "warning: ", "yellow"
            when = time.strftime("%H:%M:%S", time.localtime(record.created))
            self.console.print(f"{when} {prefix}{record.getMessage()}", style=style, markup=False,
                               highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)  # logging's contract: report it, never raise into the run


class _QuietFileHandler(logging.FileHandler):
    """nst.log on a full disk: one line on stderr, once, instead of logging's
    traceback for every record. The console keeps the run's messages."""

    _warned = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not self._warned:
            self._warned = True
            error = sys.exc_info()[1]
            print(f"nst: could not write {self.baseFilename}: {error}", file=sys.stderr)


INTERRUPTED_WARNINGS = 10  # then one line, and the rest in nst.log only


def job_name(job: RenderJob) -> str:
    """The output name without `.png`, folders kept: with `name: "{style}/{content}"`
    two styles' renders of one photo differ only in the folder."""
    return str(Path(job.output_name).with_suffix(""))


# The columns right of a bar's label: the bar's narrowest, "123/456 it" and
# two "0:00:00" times, with the spaces between them.
_COLUMNS_AFTER_LABEL = 10 + 12 + 8 + 8 + 4


def fit_label(text: str, width: int) -> str:
    """Cut text to `width` terminal cells (CJK characters take two), with "…"."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + "…"


class ProgressDisplay:
    """A Listener that draws progress; logs every event that matters."""

    def __init__(self, todo: list[RenderJob], *, live: bool, console: Console | None = None,
                 title: str = "all jobs") -> None:
        self.live = live
        self.title = title  # the overall bar's label: the manifest's name
        self.console = console or Console(stderr=True)
        self.iterations = {job.job_id: job.settings.iterations * len(job.settings.schedule()) for job in todo}
        self._progress: Progress | None = None
        self._overall = None
        self._slots: dict[int, Any] = {}
        self._slot_done: dict[int, int] = {}
        self._slot_jobs: dict[int, list[RenderJob]] = {}
        self._credited: dict[str, int] = {}
        self._announced: dict[int, Any] = {}  # slot -> pid of the worker last logged as ready
        self._interrupted = 0

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                # Iterations, not jobs: "0/6" over 3 jobs read as a miscount.
                TextColumn("{task.completed:.0f}/{task.total:.0f} it"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._overall = self._progress.add_task(self._fit(self.title), total=sum(self.iterations.values()) or 1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            # A terminal that hung up (SIGHUP) cannot take the bars' last frame;
            # the run must still write its results and summary.
            with contextlib.suppress(OSError):
                self._progress.stop()

    # -- Listener --------------------------------------------------------------------
    def on_worker(self, slot: int, device: str, info: dict[str, Any]) -> None:
        # A worker says "ready" before every task; log it once per process (a
        # replaced worker has a new pid), not once per job.
        if self._announced.get(slot) != info.get("pid"):
            self._announced[slot] = info.get("pid")
            log.info("worker %d on %s (%s) is ready, pid %s", slot, device, info.get("device_name"), info.get("pid"))
        if self._progress is not None and slot not in self._slots:
            self._slots[slot] = self._progress.add_task(self._fit(f"  worker {slot} {device}: idle"), total=1)

    def on_start(self, slot: int, jobs: list[RenderJob]) -> None:
        names = ", ".join(job_name(j) for j in jobs)
        log.info("worker %d starts %s", slot, names)
        self._slot_jobs[slot] = jobs
        self._slot_done[slot] = 0
        if self._progress is not None and slot in self._slots:
            total = max(self.iterations.get(jobs[0].job_id, 1), 1)
            # reset, not update: each job's elapsed time and ETA start from its own start.
            self._progress.reset(self._slots[slot], total=total, description=self._fit(f"  worker {slot}: {names}"))

    def _fit(self, label: str) -> str:
        """A bar's label, cut so that its counts and times stay on screen in a
        narrow terminal (rich would squeeze them to "…" instead)."""
        return fit_label(label, max(self.console.width - _COLUMNS_AFTER_LABEL, 12))

    def on_progress(self, slot: int, event: dict[str, Any]) -> None:
        done = int(event.get("done", 0))
        before = self._slot_done.get(slot, 0)
        step = max(0, done - before)
        self._slot_done[slot] = done
        for job_id in event.get("job_ids", []):
            self._credited[job_id] = self._credited.get(job_id, 0) + step
        if self._progress is not None:
            self._progress.advance(self._overall, step * len(event.get("job_ids", [])))
            if slot in self._slots:
                self._progress.update(self._slots[slot], completed=done)
        # A line each time it passes a multiple of 50: a Dask task's notes come
        # once a second, at whatever iteration it has reached, not every 10. None
        # at the last iteration: its loss is the one before the last step, and
        # the "done" line that follows gives the final one.
        elif done // 50 > before // 50 and done != event.get("total"):
            losses = ", ".join(f"{v:.4g}" for v in event.get("losses", []))
            log.info("worker %d: iteration %d/%s, loss %s", slot, done, event.get("total"), losses)

    def on_result(self, job: RenderJob, record: dict[str, Any]) -> None:
        status = record.get("status")
        if status == "done":
            stats = record.get("stats", {})
            fallback = record.get("memory_fallback")
            notes = ([f"resumed at iteration {stats['resumed_from']}"] if stats.get("resumed_from") else []) + (
                [f"memory fallback: {fallback}"] if fallback else [])
            log.info("done %s in %.1f s, loss %.4g%s", job_name(job), stats.get("seconds", 0.0),
                     stats.get("losses", {}).get("total", float("nan")),
                     f" ({'; '.join(notes)})" if notes else "")
        elif record.get("earlier_image_kept"):  # a --force re-render that did not finish
            log.warning("%s the re-render of %s%s; its earlier image stays, and only --force renders it again",
                        status, job_name(job), f": {record.get('error')}" if status == "failed" else "")
        elif status == "interrupted":
            self._interrupted += 1
            # A lost cluster interrupts a whole gallery at once: one warning per
            # job would mail cron thousands of lines that say the same thing.
            level = logging.WARNING if self._interrupted <= INTERRUPTED_WARNINGS else logging.INFO
            log.log(level, "interrupted %s: renders next run, from its last checkpoint if it has one", job_name(job))
            if self._interrupted == INTERRUPTED_WARNINGS + 1:
                log.warning("more jobs interrupted: nst.log names each one; they all render next run")
        else:
            log.error("failed %s: %s", job_name(job), record.get("error"))
        if self._progress is not None:
            # A finished job counts in full, however many iterations it reported.
            missing = self.iterations.get(job.job_id, 0) - self._credited.get(job.job_id, 0)
            self._progress.advance(self._overall, max(missing, 0))
            self._credited[job.job_id] = self.iterations.get(job.job_id, 0)
