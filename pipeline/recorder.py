"""The parent's side of every result: image, sidecar, results.jsonl, contact sheet.

Results arrive as plain dicts with PNG bytes (from a local worker or a Dask
worker alike) and are written here, in one process, so two workers can never
race on the same output file. The sheet is rebuilt as results come in, with a
pause after each rebuild that grows with its cost (SHEET_PAUSE).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .events import utc_now
from .job_state import effective_values, job_fields, reconcile, shown_record, sidecar_contents
from .jobs import RenderJob, checkpoint_path
from .outputs import (
    SUMMARY_FILE,
    append_result,
    output_is_complete,
    read_results,
    write_bytes_atomic,
    write_json_atomic,
)
from .reporter import HEARTBEAT_SECONDS, write_contact_sheet
from .thumbnails import ensure_thumbnail
from .versions import library_versions

log = logging.getLogger("nst")
KEPT_AFTER_INTERRUPT = "interrupted; the earlier image stays, and only --force renders it again"
SHEET_PAUSE = 4.0  # after rewriting index.html, wait 4× as long as that took (write_sheet)


class Recorder:
    """`jobs` are all the manifest's jobs, not only those this run renders: the
    sheet and summary.json describe the whole gallery (`--only` limits the renders)."""

    def __init__(self, output_dir: Path, jobs: list[RenderJob], title: str, manifest: str) -> None:
        self.output_dir = output_dir
        self.jobs = jobs
        self.title = title
        self.manifest = manifest
        history = read_results(output_dir)
        # What the sheet and summary.json show: the disk's word where it is newer (job_state).
        self.results: dict[str, dict[str, Any]] = reconcile(output_dir, jobs, history)
        # This run's own results, which the exit code is made of: a failed --force
        # re-render fails the run even though its cell still shows the older image.
        self.outcomes: dict[str, dict[str, Any]] = {}
        self._failed_writes: Counter[str] = Counter()  # what could not be written -> times this run
        self._restore_lost_lines(history)
        self.counts = {"done": 0, "failed": 0, "interrupted": 0, "skipped": 0}
        self.started = time.monotonic()
        self.started_at = utc_now()
        self._versions = library_versions()
        self._sheet_due = 0.0  # when the sheet may be rewritten next (write_sheet)
        self._sheet_stale = False
        self._sheet_written = time.monotonic()  # when index.html was last rewritten (catch_up)
        self._worker_devices: dict[int, str] = {}  # slot -> device, for "rendering on cuda:3"
        self._under_way: tuple[list[str], int] | None = None  # (devices, skipped) from write_start to the end

    def _restore_lost_lines(self, history: dict[str, dict[str, Any]]) -> None:
        """Append the rebuilt `done` record of a job that results.jsonl lost.

        Only where the file has no line at all for the job: there the line is
        the one the crash lost (it keeps the render's own finished_at and
        stats), and without it `nst report` (which lays out the sheet from
        results.jsonl) and the time estimate would not know the image. A job
        whose latest line is a failed or interrupted --force re-render gets no
        line: that line is true history, and reconcile() shows the image anyway.
        A renamed output (renames.py) gets a line naming its new file.
        """
        for job in self.jobs:
            record = self.results.get(job.job_id)
            if not record or "recovered_from" not in record or not _line_is_lost(history.get(job.job_id), job):
                continue
            try:
                append_result(self.output_dir, record)
            except OSError as error:
                self._cannot("append to results.jsonl", error)
                return
            history[job.job_id] = record

    def mark_queued(self, todo: list[RenderJob], *, forced: bool = False) -> None:
        """Jobs about to run show as pending, not with last night's outcome.

        In a --force run a job whose image is complete on disk keeps showing it
        as done until the new result lands: the image is still up to date, and
        if the re-render fails or is interrupted it stays the job's output."""
        for job in todo:
            shown = self.results.get(job.job_id) or {}
            if forced and shown.get("status") == "done" and output_is_complete(self.output_dir, job):
                continue
            self.results.pop(job.job_id, None)
        self.write_sheet()

    def note_worker(self, slot: int, device: str) -> None:
        self._worker_devices[slot] = device

    def mark_started(self, slot: int, jobs: list[RenderJob]) -> None:
        """Jobs a worker just took show as rendering on the sheet, with where and
        since when: someone checking the night's progress sees what is under
        way, not a wall of pending. Not written to results.jsonl (a moment, not
        an outcome). A --force re-render of a done job keeps showing its image,
        marked as being rendered again (the page then reloads as for any run)."""
        started = {"device": self._worker_devices.get(slot, ""), "started_at": utc_now()}
        for job in jobs:
            shown = self.results.get(job.job_id) or {}
            self.results[job.job_id] = ({**shown, "rerendering": started} if shown.get("status") == "done"
                                        else {"status": "rendering", **started})
        if jobs:
            self.write_sheet()

    def record(self, job: RenderJob, result: dict[str, Any]) -> dict[str, Any]:
        png = result.pop("png", None)
        if "checkpoint" in result:  # from a Dask task, whose worker cannot see this folder
            self._keep_checkpoint(job, result.pop("checkpoint"))
        record = {
            **result,
            **job_fields(job),
            "sidecar": None,  # named only once it is written: a failed job has none
            "finished_at": utc_now(),
        }
        if record.get("status") == "done":
            record["effective"] = effective_values(record.get("stats") or {})
        if record.get("status") == "done" and png is not None:
            try:
                self._write_outputs(job, png, record)
                record["sidecar"] = job.sidecar_name
            except OSError as error:  # a full disk or a quota: this job fails, the night goes on
                record.update(status="failed", error=f"could not save {Path(job.output_name).name}: {_reason(error)}")
        status = record.get("status")
        self.counts[status] = self.counts.get(status, 0) + 1
        # A failed or interrupted --force re-render leaves the older image in place, still done.
        shown = shown_record(self.output_dir, job, record) or record
        if status == "interrupted" and shown.get("status") == "done":
            # Not "resumes next run": the job is done, and only --force renders it again.
            record["error"] = KEPT_AFTER_INTERRUPT
            shown = shown_record(self.output_dir, job, record) or record
        try:
            append_result(self.output_dir, record)
        except OSError as error:  # the image (if any) is safe; only the log line is lost
            self._cannot("append to results.jsonl", error)
        self.outcomes[job.job_id] = record
        self.results[job.job_id] = shown
        self.write_sheet()
        if status != "done" and shown.get("status") == "done":
            return {**record, "earlier_image_kept": True}  # for the log line; not in results.jsonl
        return record

    def _write_outputs(self, job: RenderJob, png: bytes, record: dict[str, Any]) -> None:
        image_path = self.output_dir / job.output_name
        write_bytes_atomic(image_path, png)
        write_json_atomic(self.output_dir / job.sidecar_name,
                          sidecar_contents(job, record, manifest=self.manifest, versions=self._versions))
        ensure_thumbnail(image_path, self.output_dir / "thumbs" / f"{job.job_id}.jpg")
        # Only now, with the image safely in place, is the checkpoint useless.
        checkpoint_path(self.output_dir, job.job_id).unlink(missing_ok=True)

    def _keep_checkpoint(self, job: RenderJob, data: bytes) -> None:
        """Save an unfinished job's checkpoint here, where the next run's task
        gets it from; b"" means the job has none now (cluster_task)."""
        path = checkpoint_path(self.output_dir, job.job_id)
        try:
            if data:
                write_bytes_atomic(path, data)
            else:
                path.unlink(missing_ok=True)
        except OSError as error:  # it only saves time: the job starts from zero next run
            self._cannot(f"keep the checkpoint of {job.output_name}", error)

    def write_sheet(self, *, now: bool = False) -> None:
        """Rewrite index.html, unless it was rewritten a moment ago: then it is
        only marked stale, and catch_up() writes it when the pause is over.

        The sheet is rebuilt whole (bench row g1: 0.7 s for 5000 jobs on the
        development CPU), and this process also hands out the jobs: rewritten
        after every result, a 5000-job gallery on 8 fast GPUs would keep it
        busy writing while the GPUs waited. The pause after each rewrite is
        SHEET_PAUSE × its build time, so writing takes at most 1/(1 + SHEET_PAUSE)
        of the process's time, and a small gallery still updates at once.
        """
        if not now and time.monotonic() < self._sheet_due:
            self._sheet_stale = True
            return
        started = time.monotonic()
        try:
            write_contact_sheet(self.output_dir, self.jobs, self.results, title=self.title)
        except OSError as error:  # a full disk must not stop the renders
            self._cannot("write index.html", error)
        if self._under_way is not None:
            # With each sheet, so a killed run leaves counts as fresh as its sheet's
            # (a pulled plug: until then they were the start's), and a script can follow the run.
            self._write(self._summary(None, *self._under_way))
        finished = self._sheet_written = time.monotonic()
        self._sheet_due = finished + SHEET_PAUSE * (finished - started)
        self._sheet_stale = False

    @property
    def kept_earlier_images(self) -> int:
        """This run's --force re-renders that failed or were stopped: their earlier images stay, done."""
        return sum(1 for job_id, record in self.outcomes.items()
                   if record.get("status") != "done" and self.results.get(job_id, {}).get("status") == "done")

    @property
    def sheet_is_stale(self) -> bool:
        """A result arrived during the pause and index.html does not show it yet."""
        return self._sheet_stale

    def catch_up(self) -> None:
        """Write the sheet once the pause is over if a result arrived during it, or
        if it is HEARTBEAT_SECONDS old: an open tab takes a page much older than
        that for one a killed run left, and stops reloading (reporter)."""
        now = time.monotonic()
        overdue = now - self._sheet_written >= HEARTBEAT_SECONDS
        if (self._sheet_stale or overdue) and now >= self._sheet_due:
            self.write_sheet()

    def write_start(self, devices: list[str], skipped: int) -> None:
        """summary.json as the run starts: its manifest, devices and counts, with
        `exit_code` and `finished_at` null until it ends. A run killed outright
        (a pulled plug, kill -9) never writes its end, and `nst report` must
        still find the manifest it rendered: without it the sheet showed only
        the jobs results.jsonl knew, all done, as if the gallery were complete."""
        self._under_way = (devices, skipped)
        self._write(self._summary(None, devices, skipped))

    def write_summary(self, exit_code: int, devices: list[str], skipped: int) -> dict[str, Any]:
        self._under_way = None  # the sheet written below must not write a summary of its own
        # The run is over: the executors record every job they started, but a
        # job still shown rendering must not be shown under way by the sheet.
        for job_id, shown in list(self.results.items()):
            if shown.get("status") == "rendering":
                del self.results[job_id]
            elif "rerendering" in shown:
                self.results[job_id] = {key: value for key, value in shown.items() if key != "rerendering"}
            else:
                continue
            self._sheet_stale = True
        if self._sheet_stale:  # no pause to wait out
            self.write_sheet(now=True)
        summary = self._summary(exit_code, devices, skipped)
        self._write(summary)
        for what, times in self._failed_writes.items():
            if times > 1:
                log.warning("could not %s %d times this run", what, times)
        return summary

    def _cannot(self, what: str, error: OSError) -> None:
        """Warn of the first failed write of each file in a run, and count the rest
        for the end: a full disk failed every sheet rewrite, and cron mailed a line
        for each."""
        self._failed_writes[what] += 1
        if self._failed_writes[what] == 1:
            log.warning("could not %s: %s", what, _reason(error))

    def _summary(self, exit_code: int | None, devices: list[str], skipped: int) -> dict[str, Any]:
        statuses = [self.results.get(job.job_id, {}).get("status", "pending") for job in self.jobs]
        return {
            "manifest": self.manifest,
            "started_at": self.started_at,
            "finished_at": utc_now() if exit_code is not None else None,
            "updated_at": utc_now(),  # mid-run, when these counts were taken
            "wall_seconds": round(time.monotonic() - self.started, 3),
            "jobs": len(self.jobs),
            "rendered": self.counts.get("done", 0),
            "skipped": skipped,
            "failed": statuses.count("failed"),  # cells shown failed; this run's own failures below
            "failed_this_run": self.counts.get("failed", 0),
            # done + failed + interrupted + pending = jobs, as the sheet's header counts them.
            "interrupted": statuses.count("interrupted"),  # cells; they render next run, from their checkpoints
            "interrupted_this_run": self.counts.get("interrupted", 0),
            "pending": statuses.count("pending"),
            "done": statuses.count("done"),
            "devices": devices,
            "exit_code": exit_code,
            "versions": self._versions,
        }

    def _write(self, summary: dict[str, Any]) -> None:
        try:
            write_json_atomic(self.output_dir / SUMMARY_FILE, summary)
        except OSError as error:
            self._cannot(f"write {SUMMARY_FILE}", error)


def _line_is_lost(latest: dict[str, Any] | None, job: RenderJob) -> bool:
    """No line for the job, or a `done` line naming a file the job no longer has."""
    return latest is None or (latest.get("status") == "done" and latest.get("output") != job.output_name)


def _reason(error: OSError) -> str:
    """'No space left on device', without the errno and the path."""
    return error.strerror or str(error).splitlines()[0]
