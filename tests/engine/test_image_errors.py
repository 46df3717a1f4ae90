"""Images that load_image refuses, each with a one-line ImageError that says why."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_helpers import png, saved
from PIL import Image

from nst_engine.errors import ImageError
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
    (tmp_path / "ok.bin").write_bytes(b"\x89PNG whatever")
    assert read_image_file(tmp_path / "ok.bin") == b"\x89PNG whatever"


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
