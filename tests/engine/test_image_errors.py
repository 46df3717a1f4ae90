"""Images that load_image refuses, each with a one-line ImageError that says why."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_helpers import png, saved
from PIL import Image

from nst_engine.errors import ImageError
from nst_engine.image_files import read_header
from nst_engine.images import MAX_PIXELS, load_image, read_image_file


def _refusal(source, *phrases, **options) -> str:
    with pytest.raises(ImageError) as caught:
        load_image(source, **options)
    message = str(caught.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message
    return message


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _refusal(tmp_path / "empty.jpg", "empty.jpg", "is empty (0 bytes)")
    _refusal(b"", "image bytes", "is empty (0 bytes)")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("shopping list\neggs\n")
    _refusal(tmp_path / "notes.jpg", "notes.jpg", "is not an image PIL can read")


def test_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = (saved(tmp_path, Image.fromarray(noise), "whole.jpg", quality=95)).read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    _refusal(tmp_path / "half.jpg", "half.jpg", "truncated")


def test_truncated_png():
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    _refusal(buffer.getvalue()[: buffer.tell() // 2], "image bytes", "truncated")


def test_missing_file_and_directory(tmp_path):
    _refusal(tmp_path / "gone.png", "no such file", "gone.png")
    _refusal(tmp_path, "is a directory")


def test_reading_the_bytes_first_refuses_a_file_as_loading_it_does(tmp_path):
    # The worker reads a job's files with read_image_file, then decodes the bytes.
    for path in (tmp_path / "gone.png", tmp_path):
        with pytest.raises(ImageError) as caught:
            read_image_file(path, name="x.png")
        assert str(caught.value) == _refusal(path, name="x.png")
    image = saved(tmp_path, Image.new("RGB", (4, 3)), "ok.bin", format="PNG")
    assert read_image_file(image) == image.read_bytes()


def test_a_file_that_is_no_image_is_refused_before_it_is_read_whole(tmp_path, monkeypatch):
    # A sparse 2 GB "video.jpg" costs no memory: the header says it is no image.
    big = tmp_path / "video.jpg"
    with open(big, "wb") as handle:
        handle.truncate(2 * 2**30)
    reads = []
    real_open = open

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def read(self, size=-1):
            reads.append(size)
            return self.handle.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr("builtins.open", lambda *a, **k: Counting(real_open(*a, **k)))
    with pytest.raises(ImageError, match="video.jpg is not an image PIL can read"):
        read_image_file(big)
    assert -1 not in reads and sum(reads) < 2**20


def test_a_damaged_exif_block_is_no_warning(tmp_path):
    # PIL warns "Corrupt EXIF data" on stderr, naming no file (cron mailed it
    # every night); the photo loads, as if it had no EXIF.
    import warnings

    whole = saved(tmp_path, Image.new("RGB", (40, 30), (200, 30, 30)), "whole.jpg").read_bytes()
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x01" * 16
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(whole[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + whole[2:])
    # A PNG's eXIf chunk is read later, when the orientation is applied.
    damaged_png = saved(tmp_path, Image.new("RGB", (40, 30)), "damaged.png", exif=exif[6:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in (damaged, damaged_png):
            assert load_image(path).size == (40, 30)
            assert read_header(path) == (40, 30)
    assert [str(w.message) for w in caught] == []


def test_decompression_bomb_caught_by_pil_before_any_pixels(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png(30000, 30000))
    _refusal(tmp_path / "bomb.png", "bomb.png", "is 900 MP", "the limit is 64 MP")


def test_oversized_header_is_refused_with_its_size(tmp_path):
    (tmp_path / "big.png").write_bytes(png(10000, 10000))
    _refusal(tmp_path / "big.png", "big.png", "is 10000×10000 px (100 MP); the limit is 64 MP")
    assert MAX_PIXELS == 64_000_000


def test_max_pixels_is_the_callers_limit(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (100, 50)), "small.png")
    _refusal(path, "small.png is 100×50 px (0.005 MP); the limit is 0.004 MP", max_pixels=4000)
    assert load_image(path, max_pixels=5000).size == (100, 50)


@pytest.mark.parametrize("filename", ["moving.gif", "moving.png"])
def test_animated_images_are_refused(tmp_path, filename):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green", "blue")]
    path = saved(tmp_path, frames[0], filename, save_all=True, append_images=frames[1:])
    _refusal(path, filename, "is animated (3 frames); expected a still image")


def test_multipage_tiff_is_refused(tmp_path):
    pages = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green")]
    path = saved(tmp_path, pages[0], "pages.tif", save_all=True, append_images=pages[1:])
    _refusal(path, "pages.tif", "has 2 pages")


def test_given_name_labels_the_error(tmp_path):
    _refusal(b"not an image", "style #2 is not an image PIL can read", name="style #2")
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green")]
    path = saved(tmp_path, frames[0], "open.gif", save_all=True, append_images=frames[1:])
    with Image.open(path) as opened:
        _refusal(opened, "open.gif is animated (2 frames)")
