"""`nst render` on a gallery whose images are all on disk: what the sheet and
summary.json say when nothing renders. Real manifests, images and outputs (PNGs
with their job ids, sidecars), without starting a worker."""

from __future__ import annotations

import json

from cli_helpers import SAMPLES, read_sheet, write_manifest
from test_job_state import _done

from pipeline.manifest import load_manifest
from pipeline.recorder import Recorder
from pipeline.run import EXIT_OK, RenderOptions, execute, next_run


def _rendered_gallery(tmp_path):
    """Two jobs (chelsea and neuschwanstein × starry night), both done."""
    manifest = load_manifest(write_manifest(
        tmp_path / "m.yaml",
        [SAMPLES / "content" / "chelsea.jpg", SAMPLES / "content" / "neuschwanstein.jpg"],
        [SAMPLES / "style" / "starry_night.jpg"]))
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    for job in manifest.jobs:
        recorder.record(job, _done(job))
    return manifest


def _summary(manifest) -> dict:
    return json.loads((manifest.output_dir / "summary.json").read_text())


def test_only_renders_a_part_but_the_sheet_and_summary_cover_the_gallery(tmp_path):
    manifest = _rendered_gallery(tmp_path)
    assert execute(manifest, RenderOptions(only="chelsea*", devices=("cpu",))) == EXIT_OK
    cards = read_sheet(manifest.output_dir).cards
    assert sorted(card["job_id"] for card in cards) == sorted(job.job_id for job in manifest.jobs)
    assert {card["status"] for card in cards} == {"done"}
    summary = _summary(manifest)
    assert (summary["jobs"], summary["done"], summary["pending"]) == (2, 2, 0)


def test_an_only_run_elsewhere_does_not_count_a_job_whose_image_was_deleted_as_done(tmp_path):
    manifest = _rendered_gallery(tmp_path)
    gone = next(job for job in manifest.jobs if "neuschwanstein" in job.content)
    (manifest.output_dir / gone.output_name).unlink()
    assert execute(manifest, RenderOptions(only="chelsea*", devices=("cpu",))) == EXIT_OK
    statuses = {card["job_id"]: card["status"] for card in read_sheet(manifest.output_dir).cards}
    assert statuses[gone.job_id] == "pending" and set(statuses.values()) == {"done", "pending"}
    summary = _summary(manifest)
    assert (summary["jobs"], summary["done"], summary["pending"]) == (2, 1, 1)
    assert ("nothing to render: the jobs --only 'chelsea*' selects are up to date; the next run without "
            "--only renders 1 unfinished job") in (manifest.output_dir / "nst.log").read_text()


def test_a_lost_line_leaves_nothing_to_render_and_every_cell_done(tmp_path):
    manifest = _rendered_gallery(tmp_path)
    results = manifest.output_dir / "results.jsonl"
    results.write_text(results.read_text().splitlines(keepends=True)[0])
    assert execute(manifest, RenderOptions(devices=("cpu",))) == EXIT_OK
    assert {card["status"] for card in read_sheet(manifest.output_dir).cards} == {"done"}
    summary = _summary(manifest)
    assert (summary["jobs"], summary["done"], summary["pending"], summary["exit_code"]) == (2, 2, 0, 0)


def test_report_takes_the_folder_lock_like_a_render(tmp_path):
    import subprocess
    import time

    from cli_helpers import explain, nst, nst_command, nst_env

    from pipeline.lock import OutputLock

    out = _rendered_gallery(tmp_path).output_dir
    (out / "index.html").unlink(missing_ok=True)
    with OutputLock(out, wait=False):  # a render at work on this folder
        refused = nst("report", out, cwd=tmp_path)
        assert refused.returncode == 75, explain(refused)
        assert len(refused.stderr.strip().splitlines()) == 1 and "--wait" in refused.stderr
        assert not (out / "index.html").exists()  # the render's sheet is left alone
        waiting = subprocess.Popen(nst_command("report", out, "--wait"), cwd=tmp_path, env=nst_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None and not (out / "index.html").exists()
    stdout, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert "is busy" in stderr and (out / "index.html").exists()


def test_the_checkpoint_of_a_job_whose_image_is_whole_is_removed(tmp_path):
    # Left by an interrupted --force re-render: the next plain run skips the
    # job, and nothing else would ever delete it.
    from pipeline.jobs import checkpoint_path

    manifest = _rendered_gallery(tmp_path)
    stale = checkpoint_path(manifest.output_dir, manifest.jobs[0].job_id)
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"pixels of a re-render that never finished")
    assert execute(manifest, RenderOptions(devices=("cpu",))) == EXIT_OK
    assert not stale.exists()


def test_the_finish_line_says_what_the_next_run_will_do():
    assert next_run(0, 0) == "nothing left for the next run"
    assert next_run(10, 0) == "the next run tries 10 failed jobs again"
    assert next_run(1, 3) == "the next run tries 1 failed job again and renders 3 unfinished jobs"
    assert next_run(0, 1) == "the next run renders 1 unfinished job"
    assert next_run(6, 0, after_only=True) == "the next run without --only tries 6 failed jobs again"
    # An interrupted --force run: its jobs still show their earlier images, done.
    assert next_run(0, 0, kept_earlier=2) == ("nothing left for the next run; 2 --force re-renders did not "
                                              "complete and keep their earlier images (only --force renders "
                                              "them again)")
    assert next_run(0, 1, kept_earlier=1).endswith("renders 1 unfinished job; 1 --force re-render did not complete "
                                                   "and keeps its earlier image (only --force renders it again)")


def test_after_only_the_finish_line_says_its_counts_are_the_whole_manifests(tmp_path, monkeypatch):
    # Two jobs to do; --only renders one, which fails: "1 failed; the next run
    # tries 1 failed job again and renders 1 unfinished job" counts the other too.
    from pipeline import run
    from pipeline.events import failure_record

    manifest = load_manifest(write_manifest(
        tmp_path / "m.yaml",
        [SAMPLES / "content" / "chelsea.jpg", SAMPLES / "content" / "neuschwanstein.jpg"],
        [SAMPLES / "style" / "starry_night.jpg"]))

    class Failing:
        def run(self, todo, listener, stop) -> None:
            for job in todo:
                listener.on_result(job, failure_record(job, "photo.jpg is truncated"))

    monkeypatch.setattr(run, "_executor", lambda *args: (Failing(), ["cpu"]))
    execute(manifest, RenderOptions(only="chelsea*", live=False, quiet=True))
    assert ("finished: 0 rendered, 1 failed; the next run without --only tries 1 failed job again and "
            "renders 1 unfinished job") in (manifest.output_dir / "nst.log").read_text()


def test_a_run_names_its_manifest_in_summary_json_as_it_starts(tmp_path):
    # Killed before its end (kill -9, a power cut), it has still said which
    # gallery it renders: `nst report` lays out that manifest's jobs.
    from pipeline.rebuild import recorded_manifest

    manifest = load_manifest(write_manifest(tmp_path / "m.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                                            [SAMPLES / "style" / "starry_night.jpg"]))
    manifest.output_dir.mkdir()
    recorder = Recorder(manifest.output_dir, list(manifest.jobs), title="m", manifest=str(manifest.path))
    recorder.write_start(["cpu"], skipped=0)
    summary = json.loads((manifest.output_dir / "summary.json").read_text())
    assert (summary["manifest"], summary["exit_code"], summary["finished_at"], summary["pending"]) == (
        str(manifest.path), None, None, 1)
    found, note = recorded_manifest(manifest.output_dir)
    assert found is not None and [job.job_id for job in found.jobs] == [job.job_id for job in manifest.jobs], note
    summary = recorder.write_summary(0, ["cpu"], skipped=0)
    assert summary["exit_code"] == 0 and summary["finished_at"] and summary["started_at"]
