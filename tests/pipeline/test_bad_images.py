"""Hostile inputs in one real run: each bad file fails only its own job, with a
one-line reason on the contact sheet, and a file name that is HTML stays text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import (
    SAMPLES,
    explain,
    nst,
    png_text,
    pngs,
    read_sheet,
    render,
    result_lines,
    write_manifest,
)
from PIL import Image

pytestmark = pytest.mark.slow

XSS_NAME = "<img src=x onerror=alert(1)>"
# Content file -> a phrase its job's error must contain.
EXPECTED_ERRORS = {
    "empty.jpg": "empty.jpg is empty (0 bytes)",
    "truncated.jpg": "truncated.jpg is truncated or corrupt",
    "notes.jpg": "notes.jpg is not an image",
    "dot.png": "dot.png is 1×1 px but must be at least 16×16 px",
    "bomb.png": "bomb.png is 900 MP; the limit is 64 MP",
    "blink.gif": "blink.gif is animated (3 frames)",
    # Tall enough as stored, but 32×1 px at the render's 32 px size.
    "strip.png": "strip.png (scaled to 32 px) is 32×1 px but must be at least 16×16 px for layer relu5_1; "
                 "it needs a size of at least 800",
}
# What only decoding can find: `nst plan`, which reads headers, cannot warn of it.
FOUND_ONLY_BY_DECODING = {"truncated.jpg"}


def _make_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {name: folder / name for name in EXPECTED_ERRORS}
    photo = (SAMPLES / "content" / "neuschwanstein.jpg").read_bytes()
    files["empty.jpg"].write_bytes(b"")
    files["truncated.jpg"].write_bytes(photo[: len(photo) // 2])
    files["notes.jpg"].write_text("shopping list: eggs, milk\n")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(files["dot.png"])
    # 30000×30000 at 1 bit per pixel compresses to ~100 kB but would decode to 900 MP.
    Image.new("1", (30000, 30000)).save(files["bomb.png"])
    frames = [Image.new("RGB", (48, 48), colour) for colour in ("red", "lime", "blue")]
    frames[0].save(files["blink.gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (1000, 20), (90, 160, 60)).save(files["strip.png"])
    files["good.jpg"] = folder / "good.jpg"
    shutil.copyfile(SAMPLES / "content" / "chelsea.jpg", files["good.jpg"])
    files["xss"] = folder / f"{XSS_NAME}.jpg"
    Image.new("RGB", (40, 30), (20, 120, 200)).save(files["xss"])
    return files


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """One render, quiet as from cron: two good contents and seven bad ones, × one style."""
    root = tmp_path_factory.mktemp("bad-images")
    files = _make_inputs(root / "in")
    manifest = write_manifest(root / "bad.yaml", list(files.values()),
                              [SAMPLES / "style" / "starry_night.jpg"])
    result = render(manifest, "-q", NST_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    records = {Path(r["output"]).name.split("--")[0]: r for r in result_lines(root / "out")}
    return result, root / "out", records


def test_each_bad_image_fails_only_its_own_job(bad_run):
    result, out, records = bad_run
    assert result.returncode == 1, explain(result)  # some jobs failed, the rest rendered
    assert "Traceback" not in result.stderr
    assert len(records) == 2 + len(EXPECTED_ERRORS), explain(result)
    assert records["good"]["status"] == "done"
    cards = {card["job_id"]: card for card in read_sheet(out).cards}
    for name, phrase in EXPECTED_ERRORS.items():
        record = records[Path(name).stem]
        assert record["status"] == "failed", (name, record)
        error = record["error"]
        # Named as the plan names it, by its path from the manifest: in/empty.jpg.
        assert error.startswith(f"in/{phrase}") and "\n" not in error, (name, error)
        card = cards[record["job_id"]]
        assert card["status"] == "failed"
        assert card["error"] == error.removeprefix("in/")  # the card is in the file's row already
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["failed"], summary["exit_code"]) == (2, len(EXPECTED_ERRORS), 1)
    assert len(pngs(out)) == 2
    # -q's mail from cron: each failure, then the counts and where the sheet is; no progress.
    assert f"WARNING finished: 2 rendered, {len(EXPECTED_ERRORS)} failed; " in result.stderr, explain(result)
    assert f"{out / 'index.html'}\n" in result.stderr and " INFO " not in result.stderr, explain(result)


def test_the_plan_warns_of_each_bad_input_in_the_words_of_its_failed_job(bad_run):
    _, out, records = bad_run
    # The failed jobs are still to do; the plan reads only headers.
    planned = nst("plan", out.parent / "bad.yaml", cwd=out.parent)
    assert planned.returncode == 0, explain(planned)
    warned = [line for line in planned.stdout.splitlines() if line.startswith("warning:")]
    # Named relative to the manifest (in/...), so the file can be found and fixed.
    expected = {f"warning: 1 job will fail: {records[Path(name).stem]['error']}"
                for name in EXPECTED_ERRORS if name not in FOUND_ONLY_BY_DECODING}
    assert set(warned) == expected and len(warned) == len(expected), explain(planned)


def test_html_in_a_file_name_is_shown_as_text(bad_run):
    _, out, records = bad_run
    record = records["img_src=x_onerror=alert_1"]  # the output name is a safe slug
    assert record["status"] == "done"
    assert png_text(out / record["output"])["nst:job_id"] == record["job_id"]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert XSS_NAME not in html  # never as markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert XSS_NAME in read_sheet(out).row_names  # but readable as the row's name
    assert {c["status"] for c in read_sheet(out).cards if c["job_id"] == record["job_id"]} == {"done"}


def test_report_rebuilds_failed_cells_without_the_manifest(bad_run):
    _, out, records = bad_run
    before = read_sheet(out).cards
    (out / "index.html").unlink()
    manifest = out.parent / "bad.yaml"
    hidden = manifest.rename(out.parent / "bad.yaml.away")  # or report would lay out by it
    try:
        result = nst("report", out, cwd=out)
    finally:
        hidden.rename(manifest)
    assert result.returncode == 0 and "laid out from results.jsonl" in result.stdout, explain(result)
    after = read_sheet(out).cards
    # Failed jobs have no sidecar; results.jsonl alone must place them, error and all.
    assert sorted(map(sorted, (c.items() for c in after))) == sorted(map(sorted, (c.items() for c in before)))
    assert sum(c["status"] == "failed" for c in after) == len(EXPECTED_ERRORS)


def test_a_bad_init_image_is_named_as_the_init_image(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    manifest = write_manifest(tmp_path / "init.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                              [SAMPLES / "style" / "starry_night.jpg"], settings={"size": 32, "iterations": 2,
                                                                                  "init": "zero.jpg"})
    reason = "init image zero.jpg is empty (0 bytes)"  # not "zero.jpg is empty": the photo is fine
    planned = nst("plan", manifest, cwd=tmp_path)
    assert f"warning: 1 job will fail: {reason}\n" in planned.stdout, explain(planned)
    rendered = render(manifest)
    assert rendered.returncode == 1, explain(rendered)
    (record,) = result_lines(tmp_path / "out")
    assert record["status"] == "failed" and record["error"] == reason, record


def test_a_file_that_cannot_be_read_fails_only_its_own_job(tmp_path):
    # Reading /proc/self/mem from its start fails with EIO for every user, root
    # included: a real read error, as a bad disk sector gives. It stopped the
    # whole manifest (exit 2, nothing rendered), as an unreadable file did.
    (tmp_path / "in").mkdir()
    good = tmp_path / "in" / "good.jpg"
    shutil.copyfile(SAMPLES / "content" / "chelsea.jpg", good)
    unreadable = tmp_path / "in" / "unreadable.jpg"
    unreadable.symlink_to("/proc/self/mem")
    manifest = write_manifest(tmp_path / "m.yaml", [good, unreadable], [SAMPLES / "style" / "starry_night.jpg"])
    result = render(manifest)
    assert result.returncode == 1, explain(result)
    statuses = sorted(record["status"] for record in result_lines(tmp_path / "out"))
    assert statuses == ["done", "failed"], explain(result)
    assert "Traceback" not in result.stderr


def test_an_input_that_cannot_be_read_gets_a_stand_in_digest_until_it_can(tmp_path, monkeypatch):
    import errno

    from pipeline import jobs

    photo = tmp_path / "locked.jpg"
    shutil.copyfile(SAMPLES / "content" / "chelsea.jpg", photo)
    real = jobs.sha256_file

    def no_permission(path):
        if Path(path) == photo:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(jobs, "sha256_file", no_permission)
    jobs._file_digest_cached.cache_clear()
    locked = jobs.input_digest(photo)
    assert locked.startswith("unreadable:")
    monkeypatch.setattr(jobs, "sha256_file", real)
    jobs._file_digest_cached.cache_clear()
    assert jobs.input_digest(photo) == real(photo)  # readable again: a new job id, so it renders
    with pytest.raises(FileNotFoundError):  # a missing file stays the manifest's error
        jobs.input_digest(tmp_path / "gone.jpg")
