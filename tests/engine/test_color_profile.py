"""Embedded ICC profiles: load_image hands the engine sRGB, whatever the file's profile.

The wide-gamut files are made the way a phone makes them: sRGB pixels of a real
painting converted by LittleCMS into a P3-primaries profile and saved with that
profile embedded. Loading must give back the sRGB pixels, not the P3 numbers.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from engine_helpers import IMAGES
from icc_profiles import (
    SRGB_COLORANTS,
    cmyk_model_to_srgb,
    cmyk_profile,
    gray_profile,
    rgb_matrix_profile,
    srgb_encode,
)
from PIL import Image, ImageCms, ImageOps

from nst_engine.color_profile import to_srgb
from nst_engine.images import load_image

WIDE = rgb_matrix_profile()
CMYK = cmyk_profile()
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@pytest.fixture(scope="module")
def painting() -> Image.Image:
    """Saturated blues and yellows: where sRGB and P3 numbers differ most."""
    with Image.open(IMAGES / "style" / "starry_night.jpg") as image:
        return image.convert("RGB").resize((96, 76), Image.Resampling.LANCZOS)


def as_wide_gamut(image: Image.Image) -> Image.Image:
    return ImageCms.profileToProfile(image, SRGB, ImageCms.ImageCmsProfile(io.BytesIO(WIDE)), outputMode=image.mode)


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def levels(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))


def test_a_wide_gamut_file_loads_as_the_srgb_colours_it_encodes(painting):
    wide = as_wide_gamut(painting)
    assert levels(wide, painting).mean() > 3  # read as sRGB, the numbers would be visibly off
    loaded = load_image(encoded(wide, "PNG", icc_profile=WIDE))
    error = levels(loaded, painting)
    assert error.mean() < 0.5 and error.max() <= 2  # 8-bit rounding, twice


def test_a_jpeg_with_a_profile_and_an_orientation_tag_is_turned_and_converted(painting):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display", as phones write it
    stored = as_wide_gamut(painting).transpose(Image.Transpose.ROTATE_90)
    data = encoded(stored, "JPEG", quality=100, subsampling=0, icc_profile=WIDE, exif=exif)
    loaded = load_image(data)
    assert loaded.size == painting.size
    # The same decoded JPEG, turned but read as sRGB: JPEG's own error plus the gamut's.
    unconverted = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert levels(loaded, painting).mean() < levels(unconverted, painting).mean() / 2


def test_an_alpha_image_is_converted_then_flattened_onto_white(painting):
    rgba = as_wide_gamut(painting).convert("RGBA")
    alpha = Image.new("L", painting.size, 255)
    alpha.paste(0, (0, 0, 10, 10))  # a transparent corner
    rgba.putalpha(alpha)
    loaded = np.asarray(load_image(encoded(rgba, "PNG", icc_profile=WIDE)), dtype=np.int16)
    assert (loaded[:10, :10] == 255).all()
    assert np.abs(loaded[20:, 20:] - np.asarray(painting, dtype=np.int16)[20:, 20:]).mean() < 0.5


@pytest.mark.parametrize(("fmt", "params"), [("TIFF", {}), ("JPEG", {"quality": 100})])
def test_a_cmyk_file_goes_through_its_print_profile(fmt, params):
    inks = np.random.default_rng(0).integers(0, 256, (40, 50, 4), dtype=np.uint8)
    stored = Image.fromarray(inks, mode="CMYK")
    loaded = np.asarray(load_image(encoded(stored, fmt, icc_profile=CMYK, **params)), dtype=np.int16)
    expected = cmyk_model_to_srgb(inks).astype(np.int16)
    naive = np.asarray(stored.convert("RGB"), dtype=np.int16)  # Pillow's profile-free formula
    assert np.abs(naive - expected).mean() > 20
    assert np.abs(loaded - expected).mean() < 2  # LittleCMS's interpolation of the table


def test_a_grey_file_goes_through_its_tone_curve():
    # Gamma 1.8: the old Mac grey. (At gamma 1.0 LittleCMS's fast 8-bit path
    # is several levels off in the deepest shadows, so that would test LittleCMS.)
    stored = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), mode="L")
    loaded = np.asarray(load_image(encoded(stored, "PNG", icc_profile=gray_profile(1.8))), dtype=np.int16)
    linear = (np.arange(256).reshape(16, 16) / 255) ** (round(1.8 * 256) / 256)
    expected = srgb_encode(linear).astype(np.int16)
    assert np.abs(loaded - expected[..., None]).max() <= 2
    assert loaded[8, 0, 0] - 128 > 10  # gamma 1.8's mid-grey is lighter in sRGB (146)


@pytest.mark.parametrize(
    "profile",
    [SRGB.tobytes(), rgb_matrix_profile(SRGB_COLORANTS, None, "sRGB IEC61966-2.1, as a camera writes it")],
    ids=["littlecms", "camera"],
)
def test_an_srgb_profile_leaves_the_stored_pixels_alone(painting, profile, monkeypatch):
    data = encoded(painting, "PNG", icc_profile=profile)
    assert Image.open(io.BytesIO(data)).info["icc_profile"]  # the profile is there

    def no_conversion(*args, **kwargs):
        raise AssertionError("an sRGB file was converted")

    monkeypatch.setattr(ImageCms, "profileToProfile", no_conversion)
    assert np.array_equal(np.asarray(load_image(data)), np.asarray(painting))


@pytest.mark.parametrize(
    ("mode", "profile"),
    [
        ("RGB", b"not an ICC profile at all"),  # unreadable: taken as sRGB, like browsers do
        ("L", WIDE),  # an RGB profile on a grey image does not fit it
    ],
)
def test_a_profile_that_cannot_apply_is_ignored(painting, mode, profile):
    image = painting.convert(mode)
    loaded = load_image(encoded(image, "PNG", icc_profile=profile))
    assert np.array_equal(np.asarray(loaded), np.asarray(image.convert("RGB")))


def test_to_srgb_drops_the_profile_it_applied_and_keeps_other_info(painting):
    wide = as_wide_gamut(painting)
    wide.info.update(icc_profile=WIDE, dpi=(300, 300))
    converted = to_srgb(wide)
    assert "icc_profile" not in converted.info and converted.info["dpi"] == (300, 300)
    assert to_srgb(painting) is painting  # untagged: nothing to do
