"""The sheet, summary.json and `nst report` agree with the plan: a job whose
output is complete on disk is done, whatever the latest line of results.jsonl
says (a failed or interrupted --force re-render, a lost line, a rename). Real
PNGs and sidecars, written by the Recorder itself, in a temporary output folder."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from cli_helpers import SAMPLES, read_sheet, result_lines
from PIL import Image, ImageDraw

from nst_engine.settings import RenderSettings
from pipeline.events import StopSignal
from pipeline.jobs import RenderJob
from pipeline.outputs import JOB_ID_KEY, encode_png, output_is_complete
from pipeline.rebuild import rebuild_report
from pipeline.recorder import Recorder
from pipeline.renames import adopt_renamed
from pipeline.run import EXIT_FAILED, EXIT_OK, _exit_code

STATS = {"seconds": 2.5, "device": "cpu", "schedule": [64], "learning_rate": 1.0,
         "losses": {"total": 1.5, "content": 0.5, "style": 1.0}, "cache": {"hits": 0, "misses": 1}}


def _jobs() -> list[RenderJob]:
    content = SAMPLES / "content" / "chelsea.jpg"
    styles = [SAMPLES / "style" / "starry_night.jpg", SAMPLES / "style" / "night_cafe.jpg"]
    return [
        RenderJob(job_id=f"{i}abc123def45", content=str(content), styles=(str(style),),
                  settings=RenderSettings(size=64, iterations=5),
                  output_name=f"chelsea--{style.stem}-{i}abc123def45.png",
                  content_label="chelsea", style_label=style.stem)
        for i, style in enumerate(styles)
    ]


def _done(job: RenderJob) -> dict:
    image = Image.new("RGB", (64, 48), (40, 90, 200))
    ImageDraw.Draw(image).ellipse((10, 8, 50, 40), fill=(240, 200, 60))
    return {"job_id": job.job_id, "status": "done", "device": "cpu", "device_name": "test cpu",
            "worker_pid": 1, "stats": dict(STATS), "png": encode_png(image, {JOB_ID_KEY: job.job_id})}


def _rendered(output_dir: Path, jobs: list[RenderJob]) -> None:
    """A first, complete run of every job."""
    recorder = Recorder(output_dir, jobs, title="t", manifest="m.yaml")
    recorder.mark_queued(jobs)
    for job in jobs:
        recorder.record(job, _done(job))
    assert recorder.kept_earlier_images == 0
    recorder.write_summary(0, ["cpu"], skipped=0)


def _statuses(output_dir: Path) -> dict[str, str]:
    return {card["job_id"]: card["status"] for card in read_sheet(output_dir).cards}


def _forced_run_that_ends(output_dir: Path, jobs: list[RenderJob], outcome: dict) -> Recorder:
    """`nst render --force`: the first job ends as `outcome`, the second is never reached."""
    recorder = Recorder(output_dir, jobs, title="t", manifest="m.yaml")
    recorder.mark_queued(jobs, forced=True)
    # While the re-render runs, the complete image on disk is still the job's output.
    assert set(_statuses(output_dir).values()) == {"done"}
    recorder.record(jobs[0], {"job_id": jobs[0].job_id, "device": "cpu", **outcome})
    return recorder


def test_an_interrupted_force_rerender_leaves_the_image_done_on_sheet_summary_and_report(tmp_path):
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    recorder = _forced_run_that_ends(
        tmp_path, jobs, {"status": "interrupted", "error": "interrupted; resumes next run"})
    stop = StopSignal()
    stop.request(15)
    summary = recorder.write_summary(_exit_code(recorder, jobs, stop), ["cpu"], skipped=0)
    assert all(output_is_complete(tmp_path, job) for job in jobs)  # what the next plan sees
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}
    assert (summary["done"], summary["pending"], summary["interrupted"], summary["exit_code"]) == (2, 0, 0, 143)
    assert summary["interrupted_this_run"] == 1
    assert recorder.kept_earlier_images == 1  # the finish line says so (run_marks.next_run)
    html = (tmp_path / "index.html").read_text()
    # The worker said "resumes next run", which is not so for a job that is done.
    assert "last re-render" in html and "resumes next run" not in html
    assert ("interrupted; the earlier image stays, and only --force renders it again "
            "(this image is the earlier render)") in html
    # The line is the run's true history; `nst report` reads the disk the same way.
    assert result_lines(tmp_path)[-1]["status"] == "interrupted"
    assert result_lines(tmp_path)[-1]["error"] == "interrupted; the earlier image stays, and only --force renders it again"
    (tmp_path / "index.html").unlink()
    rebuild_report(tmp_path)
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}


def test_the_log_says_an_unfinished_force_rerender_keeps_the_earlier_image(tmp_path, caplog):
    # "renders next run" would be wrong: the next plain run skips the job.
    from pipeline.display import ProgressDisplay

    jobs = _jobs()
    _rendered(tmp_path, jobs)
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.mark_queued(jobs, forced=True)
    display = ProgressDisplay(jobs, live=False)
    outcome = {"job_id": jobs[0].job_id, "status": "interrupted", "error": "interrupted; resumes next run"}
    returned = recorder.record(jobs[0], outcome)
    assert returned["earlier_image_kept"] is True
    assert "earlier_image_kept" not in result_lines(tmp_path)[-1]
    with caplog.at_level("WARNING", logger="nst"):
        display.on_result(jobs[0], returned)
    assert caplog.messages == [f"interrupted the re-render of {jobs[0].output_name[:-4]}; its earlier image "
                               "stays, and only --force renders it again"]


def test_a_failed_force_rerender_fails_the_run_but_the_image_stays_done(tmp_path):
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    recorder = _forced_run_that_ends(tmp_path, jobs, {"status": "failed", "error": "timed out after 1 s on cpu"})
    code = _exit_code(recorder, jobs[:1], StopSignal())
    summary = recorder.write_summary(code, ["cpu"], skipped=0)
    assert code == EXIT_FAILED  # the run's own result, for cron
    assert (summary["done"], summary["failed"], summary["failed_this_run"]) == (2, 0, 1)
    assert recorder.kept_earlier_images == 1
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}
    rebuild_report(tmp_path)
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}
    assert "failed: timed out after 1 s on cpu (this image is the earlier render)" in (tmp_path / "index.html").read_text()
    # The next plain run renders nothing, and says so with the same picture.
    later = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    later.mark_queued([])
    assert later.write_summary(EXIT_OK, [], skipped=2)["done"] == 2


def test_a_lost_results_line_is_rebuilt_from_the_sidecar(tmp_path):
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # the last line is lost
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.mark_queued([])
    summary = recorder.write_summary(EXIT_OK, [], skipped=2)
    assert (summary["done"], summary["pending"]) == (2, 0)
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}
    # The line is back, rebuilt from the sidecar (settings, losses, timings, device).
    restored = result_lines(tmp_path)[-1]
    sidecar = json.loads((tmp_path / jobs[1].sidecar_name).read_text())
    assert (restored["job_id"], restored["status"], restored["recovered_from"]) == (jobs[1].job_id, "done", "sidecar")
    assert restored["stats"]["losses"] == sidecar["stats"]["losses"] and restored["device"] == "cpu"
    assert restored["finished_at"] == sidecar["finished_at"] and restored["settings"] == sidecar["settings"]
    # Once: a second run finds the line and adds nothing.
    Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    assert len(result_lines(tmp_path)) == 2
    # `nst report`, which lays the sheet out from results.jsonl, places the job again.
    rebuild_report(tmp_path)
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}


def test_a_forced_job_whose_image_is_gone_shows_pending_while_it_renders(tmp_path):
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    (tmp_path / jobs[0].output_name).unlink()
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.mark_queued(jobs, forced=True)
    assert _statuses(tmp_path) == {jobs[0].job_id: "pending", jobs[1].job_id: "done"}


def test_a_done_job_whose_image_or_sidecar_was_deleted_counts_as_pending_not_done(tmp_path):
    # The plan renders both again (`redo`); a run that leaves them alone (an
    # `--only` elsewhere) and `nst report` must not count them done meanwhile.
    jobs = _jobs() + [dataclasses.replace(_jobs()[0], job_id="c" * 12, output_name="third.png")]
    _rendered(tmp_path, jobs)
    (tmp_path / jobs[0].output_name).unlink()
    (tmp_path / jobs[1].sidecar_name).unlink()
    expected = {jobs[0].job_id: "pending", jobs[1].job_id: "pending", jobs[2].job_id: "done"}
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.write_sheet(now=True)
    summary = recorder.write_summary(0, ["cpu"], skipped=0)
    assert _statuses(tmp_path) == expected
    assert (summary["done"], summary["pending"]) == (1, 2)
    rebuild_report(tmp_path)
    assert _statuses(tmp_path) == expected
    assert {k: json.loads((tmp_path / "summary.json").read_text())[k] for k in ("done", "pending")} == \
        {"done": 1, "pending": 2}


def test_only_a_line_whose_sidecar_was_written_names_one(tmp_path):
    jobs = _jobs()
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.record(jobs[0], _done(jobs[0]))
    recorder.record(jobs[1], {"job_id": jobs[1].job_id, "status": "interrupted", "error": "interrupted"})
    done, interrupted = result_lines(tmp_path)
    assert (tmp_path / done["sidecar"]).is_file()
    assert interrupted["sidecar"] is None and not (tmp_path / jobs[1].sidecar_name).exists()


def test_the_sidecar_and_the_sheet_give_the_values_the_engine_used(tmp_path):
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    sidecar = json.loads((tmp_path / jobs[0].sidecar_name).read_text())
    assert sidecar["effective"] == {"learning_rate": 1.0, "scales": [64]}
    assert (sidecar["settings"]["learning_rate"], sidecar["settings"]["scales"]) == (0.0, [])  # the job's identity
    html = (tmp_path / "index.html").read_text()
    assert "<dt>scales used</dt><dd>64 px</dd>" in html and "<dt>learning rate used</dt><dd>1</dd>" in html


def test_a_renamed_output_shows_no_rerender_on_the_sheet_in_results_or_report(tmp_path):
    # renames.py moves an image whose name changed; its latest line is the `done`
    # of that very render, under the old name, and no re-render happened.
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    renamed = [dataclasses.replace(job, output_name="new-" + job.output_name) for job in jobs]
    assert len(adopt_renamed(tmp_path, renamed)) == 2
    recorder = Recorder(tmp_path, renamed, title="t", manifest="m.yaml")
    recorder.mark_queued([])
    recorder.write_summary(EXIT_OK, [], skipped=2)
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}
    assert "last re-render" not in (tmp_path / "index.html").read_text()
    assert all("last_rerender" not in line for line in result_lines(tmp_path))  # kept by later runs
    rebuild_report(tmp_path)
    assert "last re-render" not in (tmp_path / "index.html").read_text()


def test_a_done_rerender_in_an_older_results_file_is_not_shown(tmp_path):
    # Until shown_record stopped taking a rename for a re-render, a rename wrote its
    # line with last_rerender {status: done}, and every later run and `nst report`
    # read it back as the job's latest line: galleries renamed then still hold it.
    jobs = _jobs()
    _rendered(tmp_path, jobs)
    path = tmp_path / "results.jsonl"
    lines = [{**line, "last_rerender": {"status": "done", "error": None, "finished_at": line["finished_at"]}}
             for line in result_lines(tmp_path)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rebuild_report(tmp_path)
    assert _statuses(tmp_path) == {job.job_id: "done" for job in jobs}
    assert "last re-render" not in (tmp_path / "index.html").read_text()


def test_summary_counts_split_the_jobs_as_the_sheets_header_does(tmp_path):
    # done + failed + interrupted + pending = jobs: a script that adds them up
    # must get the gallery's size, and the same numbers the sheet shows.
    jobs = [dataclasses.replace(job, job_id=f"{n}{job.job_id[1:]}", output_name=f"{n}-{job.output_name}")
            for n, job in enumerate(_jobs() * 2)]
    recorder = Recorder(tmp_path, jobs, title="t", manifest="m.yaml")
    recorder.mark_queued(jobs)
    recorder.record(jobs[0], _done(jobs[0]))
    recorder.record(jobs[1], {"job_id": jobs[1].job_id, "status": "failed", "error": "bad", "device": "cpu"})
    recorder.record(jobs[2], {"job_id": jobs[2].job_id, "status": "interrupted", "error": "stopped",
                              "device": "cpu"})
    summary = recorder.write_summary(143, ["cpu"], skipped=0)
    counts = {status: summary[status] for status in ("done", "failed", "interrupted", "pending")}
    assert counts == {"done": 1, "failed": 1, "interrupted": 1, "pending": 1}
    assert sum(counts.values()) == summary["jobs"] == 4
    html = (tmp_path / "index.html").read_text()
    shown = {status: int(number) for status, number in
             re.findall(r'class="count-(\w+)"><span[^>]*></span><b>(\d+)</b>', html)}
    assert shown == counts
