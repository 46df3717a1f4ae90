"""Image loading, sizing, tensors and colour preservation, on real files built in tmp_path.
Images that load_image refuses: test_image_errors.py."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from image_helpers import WHITE, pixels, png, row, saved
from PIL import Image

from nst_engine.errors import ImageTooSmallError
from nst_engine.images import (
    check_size,
    fit_longest_side,
    image_digest,
    load_image,
    luminance,
    match_luminance,
    minimum_side,
    recombine_color,
    scaled_size,
    to_image,
    to_tensor,
)


# -- colour modes and bit depths ------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "values", "filename", "expected"),
    [
        ("L", [0, 100, 255], "gray.png", [(0,) * 3, (100,) * 3, WHITE]),
        ("1", [0, 1], "bits.png", [(0,) * 3, WHITE]),
        ("LA", [(100, 255), (100, 0)], "gray_alpha.png", [(100,) * 3, WHITE]),
        ("RGBA", [(10, 20, 30, 255), (10, 20, 30, 0)], "rgba.png", [(10, 20, 30), WHITE]),
        ("CMYK", [(0, 255, 255, 0), (0, 0, 0, 255)], "cmyk.tif", [(255, 0, 0), (0, 0, 0)]),
        ("I;16", [0, 32768, 65535], "deep.tif", [(0,) * 3, (128,) * 3, WHITE]),
        ("I;16", [0, 32768, 65535], "deep.png", [(0,) * 3, (128,) * 3, WHITE]),
        ("F", [0.0, 0.5, 1.0], "unit_float.tif", [(0,) * 3, (128,) * 3, WHITE]),
        ("F", [0.0, 100.0, 300.0], "wide_float.tif", [(0,) * 3, (100,) * 3, WHITE]),
    ],
)
def test_modes_load_as_8bit_rgb_with_the_right_values(tmp_path, mode, values, filename, expected):
    path = saved(tmp_path, row(mode, values), filename)
    assert pixels(load_image(path)) == expected


def test_16bit_png_is_scaled_by_257_not_clipped(tmp_path):
    path = saved(tmp_path, Image.fromarray(np.array([[0, 257 * 100, 32768, 65535]], np.uint16)), "d.png")
    assert Image.open(path).mode.startswith("I")
    assert pixels(load_image(path)) == [(0,) * 3, (100,) * 3, (128,) * 3, WHITE]


def test_16bit_rgb_png(tmp_path):
    raw = b"\x00" + struct.pack(">6H", 65535, 32768, 0, 257 * 10, 257 * 200, 257)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png(2, 1, bit_depth=16, colour_type=2, raw=raw))
    assert pixels(load_image(path)) == [(255, 128, 0), (10, 200, 1)]


@pytest.mark.parametrize("mode", ["I;16B", "I"])
def test_in_memory_deep_gray_modes(mode):
    assert pixels(load_image(row(mode, [0, 257 * 50, 65535]))) == [(0,) * 3, (50,) * 3, WHITE]


def test_palette_with_and_without_transparency(tmp_path):
    image = row("P", [0, 1, 2])
    image.putpalette([200, 10, 10, 10, 200, 10, 10, 10, 200])
    opaque = load_image(saved(tmp_path, image, "p.png"))
    clear = load_image(saved(tmp_path, image, "p_clear.png", transparency=1))
    assert pixels(opaque) == [(200, 10, 10), (10, 200, 10), (10, 10, 200)]
    assert pixels(clear) == [(200, 10, 10), WHITE, (10, 10, 200)]


def test_half_transparent_pixel_blends_with_white():
    assert load_image(row("RGBA", [(0, 0, 0, 128)])).getpixel((0, 0)) == (127, 127, 127)


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    path = saved(tmp_path, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "cmyk.jpg", quality=95)
    r, g, b = load_image(path).getpixel((8, 8))
    assert r > 240 and g < 15 and b < 15


def test_bytes_and_pil_sources_match_a_path(tmp_path):
    path = saved(tmp_path, row("RGBA", [(10, 20, 30, 255), (1, 2, 3, 0)]), "a.png")
    from_path = load_image(path)
    with Image.open(path) as opened:
        from_pil = load_image(opened)
        assert from_pil is not opened
    assert pixels(load_image(path.read_bytes())) == pixels(from_pil) == pixels(from_path)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 8))  # mark the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    loaded = load_image(saved(tmp_path, image, "turned.jpg", exif=exif, quality=95))
    assert loaded.size == (20, 40)
    r, _, b = loaded.getpixel((16, 3))  # stored top-left ends up top-right
    assert r > 200 and b < 60
    r, _, b = loaded.getpixel((3, 3))
    assert r < 60 and b > 200


# -- sizes ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layer", "side"),
    [("relu1_1", 1), ("conv1_2", 1), ("pool1", 2), ("relu2_1", 2), ("relu3_1", 4),
     ("relu4_2", 8), ("relu5_1", 16), ("relu5_4", 16), ("pool5", 32)],
)
def test_minimum_side(layer, side):
    assert minimum_side(layer) == side


def test_minimum_side_rejects_unknown_layer():
    with pytest.raises(ValueError, match="unknown layer 'relu9_9'"):
        minimum_side("relu9_9")


def test_check_size():
    with pytest.raises(ImageTooSmallError) as caught:
        check_size((1, 1), "relu5_1", name="dot.png")
    assert str(caught.value) == "dot.png is 1×1 px but must be at least 16×16 px for layer relu5_1"
    check_size((16, 300), "relu5_1")
    with pytest.raises(ImageTooSmallError, match="at least 32×32"):
        check_size((300, 31), "pool5")


@pytest.mark.parametrize(
    ("size", "side", "upscale", "expected"),
    [((800, 400), 256, False, (256, 128)), ((100, 50), 256, False, (100, 50)),
     ((100, 50), 512, True, (512, 256)), ((400, 800), 256, False, (128, 256)),
     ((3, 1000), 100, False, (1, 100)), ((1000, 999), 10, False, (10, 10)),
     ((256, 256), 256, True, (256, 256)), ((300, 200), 5, False, (5, 3))],
)
def test_scaled_size(size, side, upscale, expected):
    assert scaled_size(size, side, upscale) == expected


def test_fit_longest_side():
    wide = Image.new("RGB", (800, 400), (9, 99, 199))
    small = Image.new("RGB", (100, 50))
    assert fit_longest_side(wide, 256).size == (256, 128)
    assert fit_longest_side(wide, 256).getpixel((100, 60)) == (9, 99, 199)
    assert fit_longest_side(small, 256) is small
    assert fit_longest_side(small, 512, upscale=True).size == (512, 256)


# -- tensors ----------------------------------------------------------------------
def _all_values_image() -> Image.Image:
    values = np.arange(256 * 3, dtype=np.uint16).reshape(16, 16, 3) % 256
    return Image.fromarray(np.ascontiguousarray(np.rot90(values)).astype(np.uint8))


def test_to_tensor_layout_and_exact_round_trip():
    image = _all_values_image()
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 16, 16) and tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    assert float(tensor.min()) == 0.0 and float(tensor.max()) == 1.0
    assert tensor[0, :, 2, 5].mul(255).round().tolist() == list(image.getpixel((5, 2)))
    assert to_image(tensor).tobytes() == image.tobytes()
    assert to_image(tensor[0]).tobytes() == image.tobytes()


def test_to_image_clamps_and_refuses_bad_input():
    assert to_image(torch.tensor([-1.0, 0.5, 2.0]).view(3, 1, 1)).getpixel((0, 0)) == (0, 128, 255)
    with pytest.raises(ValueError, match="non-finite|NaN"):
        to_image(torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"\[1, 3, H, W\]"):
        to_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="RGB"):
        to_tensor(Image.new("L", (2, 2)))


# -- colour preservation -----------------------------------------------------------
def _gray_noise(mean: float, std: float, seed: int) -> Image.Image:
    values = np.random.default_rng(seed).normal(mean, std, (64, 64))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).convert("RGB")


def test_luminance_is_bt601_y_in_three_channels():
    luma = luminance(Image.new("RGB", (2, 2), (255, 0, 0)))
    assert luma.mode == "RGB" and luma.getpixel((0, 0)) == (76, 76, 76)  # 0.299 * 255


def test_match_luminance_takes_the_contents_statistics():
    style, content = _gray_noise(60, 10, 1), _gray_noise(150, 30, 2)
    matched = np.asarray(match_luminance(luminance(style), luminance(content)), dtype=np.float64)
    target = np.asarray(content, dtype=np.float64)
    assert matched.shape == (64, 64, 3)
    assert (matched[..., 0] == matched[..., 2]).all()
    assert abs(matched.mean() - target.mean()) < 1
    assert abs(matched.std() - target.std()) < 1


def test_match_luminance_of_a_flat_style_is_the_contents_mean():
    matched = match_luminance(Image.new("RGB", (4, 4), (9, 9, 9)), _gray_noise(120, 20, 3))
    assert abs(matched.getpixel((0, 0))[0] - 120) <= 2


def test_recombine_color_keeps_the_colour_sources_chroma():
    stylised = Image.new("RGB", (32, 32), (120, 120, 120))
    red = Image.new("RGB", (64, 64), (200, 30, 30))
    r, g, b = recombine_color(stylised, red).getpixel((5, 5))
    assert r > g + 80 and r > b + 80
    assert recombine_color(stylised, red).size == (32, 32)
    assert abs(luminance(recombine_color(stylised, red)).getpixel((0, 0))[0] - 120) <= 2


def test_image_digest_is_stable_and_sees_pixels_and_shape():
    one = Image.new("RGB", (4, 2), (1, 2, 3))
    other = one.copy()
    other.putpixel((3, 1), (1, 2, 4))
    assert image_digest(one) == image_digest(one.copy())
    assert len(image_digest(one)) == 64
    assert image_digest(one) != image_digest(other)
    assert image_digest(one) != image_digest(Image.new("RGB", (2, 4), (1, 2, 3)))
