"""Atomic writes, results.jsonl, and the check a rerun uses to skip finished jobs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import SAMPLES
from icc_profiles import rgb_matrix_profile
from PIL import Image, ImageCms

from nst_engine.settings import RenderSettings
from pipeline import thumbnails
from pipeline.jobs import RenderJob
from pipeline.outputs import (
    JOB_ID_KEY,
    SETTINGS_KEY,
    append_result,
    encode_png,
    output_is_complete,
    output_problem,
    read_results,
    write_bytes_atomic,
    write_json_atomic,
)
from pipeline.thumbnails import source_thumbnail, write_thumbnail


def _image(color=(200, 40, 90), size=(20, 12)) -> Image.Image:
    return Image.new("RGB", size, color)


def _job(job_id="3fa2b1c9d0e1") -> RenderJob:
    return RenderJob(
        job_id=job_id,
        content="/in/chelsea.jpg",
        styles=("/in/starry_night.jpg",),
        settings=RenderSettings(),
        output_name=f"sub/chelsea--starry_night-{job_id}.png",
        content_label="chelsea",
        style_label="starry_night",
    )


def _finish(out: Path, job: RenderJob, png_id: str | None = None, sidecar_id: str | None = None):
    write_bytes_atomic(out / job.output_name, encode_png(_image(), {JOB_ID_KEY: png_id or job.job_id}))
    write_json_atomic(out / job.sidecar_name, {"job_id": sidecar_id or job.job_id})


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# -- atomic writes --------------------------------------------------------------------


def test_png_round_trips_text_chunks_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "b" / "out.png"
    settings = json.dumps({"size": 512, "init": "/photos/café.jpg"})  # non-Latin-1 → iTXt
    write_bytes_atomic(path, encode_png(_image(), {JOB_ID_KEY: "abc", SETTINGS_KEY: settings}))
    with Image.open(path) as image:
        assert image.text == {JOB_ID_KEY: "abc", SETTINGS_KEY: settings}
        assert image.size == (20, 12) and image.getpixel((0, 0)) == (200, 40, 90)
    assert _leftovers(tmp_path) == []
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_json_is_sorted_and_indented(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


@pytest.mark.parametrize("write", ["png", "json"])
def test_a_crash_before_the_rename_keeps_the_previous_version(tmp_path, monkeypatch, write):
    path = tmp_path / ("out.png" if write == "png" else "out.json")

    def do_write(tag: str) -> None:
        if write == "png":
            write_bytes_atomic(path, encode_png(_image(), {JOB_ID_KEY: tag}))
        else:
            write_json_atomic(path, {"job_id": tag})

    do_write("old")
    before = path.read_bytes()

    def killed(*args):
        raise KeyboardInterrupt("killed midway")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        do_write("new")
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_crash_during_the_first_write_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("disk pulled")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk pulled"):
        write_bytes_atomic(path, encode_png(_image(), {JOB_ID_KEY: "x"}))
    assert not path.exists() and _leftovers(tmp_path) == []


# -- results.jsonl ----------------------------------------------------------------------


def test_last_record_per_job_wins(tmp_path):
    append_result(tmp_path, {"job_id": "a", "status": "failed", "attempts": 1})
    append_result(tmp_path, {"job_id": "b", "status": "done"})
    append_result(tmp_path, {"job_id": "a", "status": "done", "attempts": 2})
    results = read_results(tmp_path)
    assert results == {
        "a": {"job_id": "a", "status": "done", "attempts": 2},
        "b": {"job_id": "b", "status": "done"},
    }
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 3


def test_missing_results_file_is_empty(tmp_path):
    assert read_results(tmp_path / "nowhere") == {}


def test_truncated_last_line_is_skipped_and_the_next_append_starts_fresh(tmp_path):
    append_result(tmp_path, {"job_id": "a", "status": "done"})
    path = tmp_path / "results.jsonl"
    with path.open("ab") as handle:  # a power cut mid-write
        handle.write(b'{"job_id": "b", "stat')
    assert read_results(tmp_path) == {"a": {"job_id": "a", "status": "done"}}
    append_result(tmp_path, {"job_id": "c", "status": "failed"})
    assert set(read_results(tmp_path)) == {"a", "c"}


def test_garbage_lines_are_skipped(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'[1, 2]\n{"no_id": 1}\n\xff\xfe\n\n{"job_id": "a", "status": "done"}\n')
    assert read_results(tmp_path) == {"a": {"job_id": "a", "status": "done"}}


def test_concurrent_appends_never_interleave(tmp_path):
    padding = "x" * 20_000  # far more than one stdio buffer

    def writer(n: int) -> None:
        for i in range(25):
            append_result(tmp_path, {"job_id": f"{n}-{i}", "pad": padding})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["pad"] == padding for line in lines)


# -- is a job already done? ------------------------------------------------------------------


def test_complete_output_is_recognised(tmp_path):
    job = _job()
    _finish(tmp_path, job)
    assert output_is_complete(tmp_path, job)


def test_missing_png_or_sidecar_is_incomplete(tmp_path):
    job = _job()
    assert not output_is_complete(tmp_path, job)
    _finish(tmp_path, job)
    (tmp_path / job.sidecar_name).unlink()
    assert not output_is_complete(tmp_path, job)


def test_truncated_or_garbage_png_is_incomplete(tmp_path):
    job = _job()
    _finish(tmp_path, job)
    png = tmp_path / job.output_name
    data = png.read_bytes()
    png.write_bytes(data[: len(data) - 20])  # lost the IEND chunk
    assert not output_is_complete(tmp_path, job)
    png.write_bytes(b"")
    assert not output_is_complete(tmp_path, job)
    png.write_text("not a png")
    assert not output_is_complete(tmp_path, job)


def test_wrong_job_id_in_png_or_sidecar_is_incomplete(tmp_path):
    job = _job()
    _finish(tmp_path, job, png_id="000000000000")
    assert not output_is_complete(tmp_path, job)
    _finish(tmp_path, job, sidecar_id="000000000000")
    assert not output_is_complete(tmp_path, job)
    _finish(tmp_path, job)
    (tmp_path / job.sidecar_name).write_text("{broken")
    assert not output_is_complete(tmp_path, job)


def test_png_without_text_chunk_is_incomplete(tmp_path):
    job = _job()
    _finish(tmp_path, job)
    _image().save(tmp_path / job.output_name)
    assert not output_is_complete(tmp_path, job)


# -- thumbnails -------------------------------------------------------------------------------


def test_thumbnail_fits_the_box_and_flattens_alpha(tmp_path):
    src = tmp_path / "big.png"
    Image.new("RGBA", (600, 300), (255, 0, 0, 0)).save(src)
    write_thumbnail(src, tmp_path / "t" / "big.jpg", side=64)
    with Image.open(tmp_path / "t" / "big.jpg") as thumb:
        assert thumb.format == "JPEG" and thumb.mode == "RGB" and thumb.size == (64, 32)
    assert _leftovers(tmp_path) == []


def _deep_grey_png(path: Path) -> Path:
    """A true 16-bit greyscale PNG: an 8-bit gradient × 257, so every value uses the full range."""
    levels = np.tile(np.linspace(20, 230, 96).round().astype(np.uint16), (64, 1)) * 257
    Image.fromarray(levels).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    return path


def _half_transparent_png(path: Path) -> Path:
    Image.new("RGBA", (96, 64), (200, 30, 30, 128)).save(path)
    return path


@pytest.mark.parametrize("make", [_deep_grey_png, _half_transparent_png])
def test_a_source_thumbnail_shows_what_the_engine_sees(tmp_path, make):
    # The engine's own loader; a test process may load torch.
    from nst_engine.images import load_image

    src = make(tmp_path / "source.png")
    write_thumbnail(src, tmp_path / "thumb.jpg", side=64)
    with Image.open(tmp_path / "thumb.jpg") as thumb:
        shown = np.asarray(thumb.convert("RGB"), dtype=np.float64)
    seen = np.asarray(load_image(src).resize((64, 43), Image.Resampling.LANCZOS), dtype=np.float64)
    # Without the engine's conversion: pure white (16-bit values clipped at 255),
    # or red on the page's dark grey (alpha) where the engine flattens onto white.
    assert shown.shape == seen.shape
    assert np.abs(shown.mean(axis=(0, 1)) - seen.mean(axis=(0, 1))).max() < 3
    assert np.abs(shown - seen).mean() < 3


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_thumbnail_of_a_wide_gamut_photo_shows_its_srgb_colours(tmp_path, fmt):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    wide = ImageCms.ImageCmsProfile(io.BytesIO(rgb_matrix_profile()))
    with Image.open(SAMPLES / "style" / "starry_night.jpg") as painting:
        original = painting.convert("RGB").resize((128, 101))
    src = tmp_path / f"phone.{fmt.lower()}"
    ImageCms.profileToProfile(original, srgb, wide).save(
        src, format=fmt, icc_profile=wide.tobytes(), **({"quality": 100} if fmt == "JPEG" else {}))
    write_thumbnail(src, tmp_path / "thumb.jpg", side=64)

    def mean_colour(image: Image.Image) -> np.ndarray:  # JPEG noise averages out, a gamut shift does not
        return np.asarray(image.convert("RGB"), dtype=np.float64).mean(axis=(0, 1))

    with Image.open(tmp_path / "thumb.jpg") as thumb, Image.open(src) as stored:
        error = np.abs(mean_colour(thumb) - mean_colour(original)).max()
        unconverted = np.abs(mean_colour(stored) - mean_colour(original)).max()
    assert error < 1.0 < unconverted


def test_source_thumbnail_is_made_once(tmp_path, monkeypatch):
    src = tmp_path / "in" / "my cat.png"
    src.parent.mkdir()
    _image(size=(300, 200)).save(src)
    out = tmp_path / "out"
    relative = source_thumbnail(src, out)
    assert relative is not None and relative.startswith("thumbs/sources/my_cat-")
    assert relative.endswith(".jpg") and len(Path(relative).stem) == len("my_cat-") + 8
    assert (out / relative).is_file()

    monkeypatch.setattr(thumbnails, "write_thumbnail", lambda *a: pytest.fail("rewrote thumbnail"))
    assert source_thumbnail(src, out) == relative


def test_a_photo_replaced_by_an_older_file_gets_a_new_thumbnail(tmp_path):
    # `mv`, `cp -p` and `rsync -a` keep the new file's older mtime.
    src = tmp_path / "cat.png"
    _image(color=(200, 40, 90)).save(src)
    out = tmp_path / "out"
    relative = source_thumbnail(src, out)
    replacement = tmp_path / "castle.png"
    _image(color=(20, 200, 40)).save(replacement)
    os.utime(replacement, ns=(10**18, 10**18))  # 2001: long before the thumbnail
    time.sleep(0.01)
    replacement.replace(src)
    assert source_thumbnail(src, out) == relative
    with Image.open(out / relative) as thumb:
        assert thumb.convert("RGB").getpixel((5, 5))[1] > 150  # the castle's green, not the cat's red


def test_a_source_thumbnail_from_before_colour_management_is_not_reused(tmp_path):
    # Version 1 named it by the path alone, and its colours ignored the profile;
    # a fresh mtime must not keep it in the sheet.
    src = tmp_path / "phone.png"
    _image().save(src)
    old = f"thumbs/sources/phone-{hashlib.sha256(str(src).encode()).hexdigest()[:8]}.jpg"
    (tmp_path / "out" / old).parent.mkdir(parents=True)
    _image().save(tmp_path / "out" / old)
    assert source_thumbnail(src, tmp_path / "out") not in (None, old)


def test_same_stem_in_two_folders_gets_two_thumbnails(tmp_path):
    paths = [tmp_path / d / "cat.png" for d in ("a", "b")]
    for path in paths:
        path.parent.mkdir()
        _image().save(path)
    assert len({source_thumbnail(p, tmp_path / "out") for p in paths}) == 2


@pytest.mark.parametrize("content", [b"", b"just some text\n", b"\x89PNG\r\n\x1a\n broken"])
def test_broken_source_gives_none(tmp_path, content):
    src = tmp_path / "bad.jpg"
    src.write_bytes(content)
    assert source_thumbnail(src, tmp_path / "out") is None
    assert source_thumbnail(tmp_path / "missing.jpg", tmp_path / "out") is None
    assert _leftovers(tmp_path) == []


def test_writing_outputs_and_the_sheet_does_not_import_torch():
    # The parent process must never touch CUDA, so these modules stay torch-free.
    code = "import sys, pipeline.outputs, pipeline.reporter; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_huge_photo_makes_a_thumbnail_without_pillows_warning(tmp_path, monkeypatch):
    # Over PIL's warning limit, under its error limit (twice as much), as a 100 MP
    # photo is: the sheet's thumbnail must not print PIL's warning into cron's mail.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    photo = tmp_path / "huge.png"
    _image(size=(40, 40)).save(photo)  # 1600 pixels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        relative = source_thumbnail(photo, tmp_path / "out")
    assert relative is not None and (tmp_path / "out" / relative).is_file()
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []


def test_a_thumbnail_the_disk_cannot_take_leaves_nothing_under_its_name(tmp_path):
    from file_limits import file_size_limit

    source, thumb = SAMPLES / "content" / "chelsea.jpg", tmp_path / "thumbs" / "chelsea.jpg"
    thumb.parent.mkdir()
    with pytest.raises(OSError, match="File too large"), file_size_limit(4096):  # the JPEG is ~10 kB
        thumbnails.write_thumbnail(source, thumb)
    assert list(thumb.parent.iterdir()) == []  # not half a thumbnail, and no temp file


def test_a_cut_off_thumbnail_is_made_again_though_newer_than_its_source(tmp_path):
    source, thumb = SAMPLES / "content" / "chelsea.jpg", tmp_path / "chelsea.jpg"
    thumbnails.write_thumbnail(source, thumb)
    whole = thumb.read_bytes()
    assert thumbnails.thumbnail_is_fresh(source, thumb)
    thumb.write_bytes(whole[:4096])  # as an earlier version left it on a full disk
    assert not thumbnails.thumbnail_is_fresh(source, thumb)
    assert thumbnails.ensure_thumbnail(source, thumb) and thumb.read_bytes() == whole
    with Image.open(thumb) as image:
        image.load()


def test_output_problem_says_why_files_from_an_earlier_render_do_not_count_as_done(tmp_path):
    job = _job()
    png, sidecar = tmp_path / job.output_name, tmp_path / job.sidecar_name
    assert output_problem(png, job.job_id) is None  # never written
    _finish(tmp_path, job)
    assert output_problem(png, job.job_id) is None  # whole
    sidecar.unlink()
    assert output_problem(png, job.job_id) == "sidecar missing"
    _finish(tmp_path, job, sidecar_id="0123456789ab")
    assert output_problem(png, job.job_id) == "sidecar unreadable or naming another job"
    _finish(tmp_path, job, png_id="0123456789ab")
    assert output_problem(png, job.job_id) == "image carries another job's id; it is overwritten"
    _image().save(png)  # an editor's save drops the text chunk
    assert output_problem(png, job.job_id).startswith("image unreadable, cut short, or saved again without its job id")
    png.unlink()
    assert output_problem(png, job.job_id) == "image missing (its sidecar is there)"
