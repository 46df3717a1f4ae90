"""(g) Contact sheet: what rewriting index.html costs the process that hands out jobs.

The recorder rebuilds the whole sheet as results come in (pipeline/recorder.py),
in the same process that dispatches jobs to the workers, so time spent writing
is time no idle GPU gets its next job.

- g1: one rebuild of a sheet of N finished jobs (thumbnails already made).
- g2: the recorder's busy time (record, the idle loop's catch_up, the final
  write) while M results arrive ARRIVAL_GAP apart and the rest of the N jobs
  are already done, with the pause after each rewrite (`SHEET_PAUSE`) ÷ with
  the sheet rewritten after every result (pause 0). Both end with the run's
  final write (`write_summary`), so both leave the same sheet.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from nst_engine.settings import RenderSettings
from pipeline import recorder as recorder_module
from pipeline.jobs import RenderJob
from pipeline.outputs import RESULTS_FILE
from pipeline.recorder import Recorder
from pipeline.reporter import write_contact_sheet

from .common import Config, Row, interleaved, median, ratio_row

STYLES_PER_ROW = 50
ARRIVAL_GAP = 0.05  # s between results: e.g. 8 GPUs finishing 2.5 images a second each


def sheet_rows(cfg: Config, device: str) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="nst-bench-sheet-"))
    try:
        jobs = _gallery(folder, cfg.sheet_jobs)
        results = {job.job_id: _result(job) for job in jobs}
        write_contact_sheet(folder, jobs, results, title="bench")  # makes the thumbnails once

        def rebuild() -> float:
            started = time.perf_counter()
            write_contact_sheet(folder, jobs, results, title="bench")
            return time.perf_counter() - started

        fns = {
            "rebuild": rebuild,
            "paused": lambda: _record(folder, jobs, cfg.sheet_results, recorder_module.SHEET_PAUSE),
            "every": lambda: _record(folder, jobs, cfg.sheet_results, 0.0),
        }
        times = interleaved(fns, max(2, cfg.repeats // 2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    n, m = cfg.sheet_jobs, cfg.sheet_results
    return [
        Row("g1", f"contact sheet of {n} finished jobs: one rebuild (s)", median(times["rebuild"]),
            f"{median(times['rebuild']):.3f} s"),
        ratio_row("g2", f"{m} results {ARRIVAL_GAP:g} s apart, {n}-job sheet: time the dispatching process "
                        f"spends recording, with the pause after each rewrite ÷ rewriting after every result",
                  median(times["paused"]), median(times["every"])),
    ]


def _record(folder: Path, jobs: list[RenderJob], count: int, pause: float) -> float:
    """The recorder's busy seconds for `count` results ARRIVAL_GAP apart, the
    rest of the gallery already done, with this pause factor; between results
    the executor's idle loop calls catch_up(), as in a run."""
    done_before = "".join(json.dumps({**_result(job), "finished_at": "2026-01-01T00:00:00Z"}) + "\n"
                          for job in jobs[count:])
    (folder / RESULTS_FILE).write_text(done_before, encoding="utf-8")
    saved = recorder_module.SHEET_PAUSE
    recorder_module.SHEET_PAUSE = pause
    try:
        recorder = Recorder(folder, jobs, title="bench", manifest="bench.yaml")
        recorder.write_sheet()  # as a run's start does (mark_queued)
        busy = 0.0
        for job in jobs[:count]:
            next_arrival = time.perf_counter() + ARRIVAL_GAP
            busy += _timed(lambda job=job: recorder.record(job, _result(job)))
            while time.perf_counter() < next_arrival:
                busy += _timed(recorder.catch_up)
                time.sleep(max(0.0, min(0.01, next_arrival - time.perf_counter())))
        return busy + _timed(lambda: recorder.write_summary(0, ["cuda:0"], skipped=0))
    finally:
        recorder_module.SHEET_PAUSE = saved


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _gallery(folder: Path, count: int) -> list[RenderJob]:
    """`count` jobs with a small finished PNG each, 50 styles to a row."""
    settings = RenderSettings(size=512, iterations=500)
    jobs = []
    for index in range(count):
        row, column = divmod(index, STYLES_PER_ROW)
        job = RenderJob(f"job{index:05d}", f"/photos/p{row}.jpg", (f"/paintings/s{column}.jpg",), settings,
                        f"p{row}--s{column}.png", f"p{row}", f"s{column}")
        Image.new("RGB", (24, 16), (index % 256, 90, 160)).save(folder / job.output_name)
        jobs.append(job)
    return jobs


def _result(job: RenderJob) -> dict:
    """A finished job's record as a worker sends it (without the PNG bytes, already on disk)."""
    return {
        "job_id": job.job_id, "status": "done", "device": "cuda:0", "device_name": "bench", "worker_pid": 1,
        "stats": {"seconds": 12.5, "wall_seconds": 12.6, "iterations": 500, "batch_size": 1,
                  "losses": {"total": 0.9, "content": 0.4, "style": 0.5}, "device": "cuda:0",
                  "device_name": "bench", "cache": {"hits": 1, "misses": 0}, "peak_memory_mb": 900.0},
    }
