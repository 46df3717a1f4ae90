"""The parent's files on a disk that refuses writes: each failure is one line
of warning, or fails the one job it belongs to; the run itself never stops."""

from __future__ import annotations

import logging
import re

from file_limits import file_size_limit

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.recorder import Recorder


def _job() -> RenderJob:
    return RenderJob(job_id="abc123", content="/x/cat.jpg", styles=("/x/starry.jpg",),
                     settings=RenderSettings(size=64, iterations=5),
                     output_name="cat--starry-abc123.png", content_label="cat", style_label="starry")


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_results_sheet_and_summary_that_cannot_be_written_are_warnings(tmp_path):
    job = _job()
    second = RenderJob(job_id="def456", content="/x/dog.jpg", styles=("/x/starry.jpg",),
                       settings=job.settings, output_name="dog--starry-def456.png",
                       content_label="dog", style_label="starry")
    recorder = Recorder(tmp_path, [job, second], title="t", manifest="m.yaml")
    warnings = _Warnings()
    nst_log = logging.getLogger("nst")
    # Only this handler while the limit holds: one an earlier in-process run left
    # (a file, or pytest's captured stderr) would hit the limit too, and fail.
    earlier, nst_log.handlers = nst_log.handlers, [warnings]
    try:
        with file_size_limit(64):  # smaller than any of the three files
            record = recorder.record(job, {"job_id": job.job_id, "status": "failed", "error": "bad image"})
            recorder.record(second, {"job_id": second.job_id, "status": "failed", "error": "bad image"})
            summary = recorder.write_summary(1, ["cpu"], skipped=0)
    finally:
        nst_log.handlers = earlier
    assert record["status"] == "failed" and summary["failed"] == 2
    # The kernel takes the first 64 bytes of the line, then refuses the rest;
    # those 64 bytes are taken back, so no cut-off line trips a reader later.
    assert re.fullmatch(r"could not append to results.jsonl: short write, 64 of \d+ bytes \(is the disk full\?\)",
                        warnings.lines[0]), warnings.lines
    assert (tmp_path / "results.jsonl").read_bytes() == b""
    # Each failure once, not once a job: a full disk mailed cron a line per rewrite.
    assert warnings.lines[1:] == [
        "could not write index.html: File too large",
        "could not write summary.json: File too large",
        "could not append to results.jsonl 2 times this run",
        "could not write index.html 2 times this run",
    ], warnings.lines
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def _done(job: RenderJob) -> dict:
    return {"job_id": job.job_id, "status": "failed", "error": "stand-in result"}


def test_the_sheet_waits_out_a_pause_after_a_slow_rewrite_and_catches_up(tmp_path, monkeypatch):
    import time

    from pipeline import recorder as recorder_module

    jobs = [RenderJob(job_id=f"job{i}", content="/x/cat.jpg", styles=("/x/starry.jpg",),
                      settings=RenderSettings(size=64, iterations=5), output_name=f"o{i}.png",
                      content_label="cat", style_label=f"s{i}") for i in range(3)]
    written: list[int] = []  # how many results each rewrite showed

    def slow_sheet(output_dir, all_jobs, results, *, title):
        time.sleep(0.05)  # a big gallery's build time, shrunk
        written.append(len(results))

    monkeypatch.setattr(recorder_module, "write_contact_sheet", slow_sheet)
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.record(jobs[0], _done(jobs[0]))
    recorder.record(jobs[1], _done(jobs[1]))  # inside the 4 × 0.05 s pause: deferred
    recorder.catch_up()  # still inside it
    assert written == [1]
    time.sleep(4 * 0.05 + 0.05)
    recorder.catch_up()
    assert written == [1, 2]
    recorder.catch_up()  # nothing new: nothing to write
    recorder.record(jobs[2], _done(jobs[2]))  # inside the new pause again
    assert written == [1, 2]
    recorder.write_summary(1, ["cpu"], skipped=0)  # the run is over: written at once
    assert written == [1, 2, 3]
