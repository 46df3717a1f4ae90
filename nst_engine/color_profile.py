"""Embedded ICC colour profiles: bring pixels into sRGB before anything reads them.

The network, the outputs and the contact sheet all assume sRGB, which is what
an untagged file means. Many photos are not: phones save Display P3, cameras
and editors Adobe RGB, print files CMYK with a press profile. Read as if they
were sRGB, their colours come out dull or shifted. Pillow's LittleCMS converts
them; this module decides when.

A profile that cannot be read or applied is ignored, as browsers ignore one:
the pixels are then taken as sRGB, which is what every viewer shows the user.
Torch-free, so the pipeline's parent process can use it for thumbnails.
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms

# Modes LittleCMS converts through Pillow, and the sRGB mode each becomes.
_OUTPUT_MODE = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB", "L": "RGB"}
# The profile's colour space (ICC header) that each mode must carry.
_PROFILE_SPACE = {"RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK", "L": "GRAY"}
# Primaries further apart than this (in D50 XYZ) are not sRGB's. Copies of the
# sRGB profile from cameras, editors and LittleCMS agree to about 1e-4.
_SRGB_TOLERANCE = 2e-3


def to_srgb(image: Image.Image) -> Image.Image:
    """`image` converted from its embedded ICC profile to sRGB; `image` itself if it
    has no profile, an sRGB one, or one that does not fit or cannot be applied."""
    source = _readable_profile(image)
    if source is None:
        return image
    try:
        converted = ImageCms.profileToProfile(
            image, source, _srgb(), outputMode=_OUTPUT_MODE[image.mode],
            # For the matrix profiles of phones and cameras every intent gives the
            # same result; table profiles (CMYK print) carry a perceptual table
            # made for viewing, which keeps out-of-gamut detail.
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    converted.info = {k: v for k, v in image.info.items() if k != "icc_profile"}
    return converted


def _readable_profile(image: Image.Image) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile when converting through it would change the pixels."""
    data = image.info.get("icc_profile")
    if not data or image.mode not in _OUTPUT_MODE:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        space = profile.profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, ValueError, AttributeError):
        return None
    if space != _PROFILE_SPACE[image.mode] or (space == "RGB" and _is_srgb(profile)):
        return None
    return profile


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    """sRGB primaries and white: most tagged photos. Skipping them keeps their
    pixels exactly as stored, where a round trip through LittleCMS could move
    some by one level."""
    ours, theirs = _srgb().profile, profile.profile
    try:
        pairs = [
            (getattr(ours, name)[0], getattr(theirs, name)[0])
            for name in ("red_colorant", "green_colorant", "blue_colorant", "media_white_point")
        ]
    except (TypeError, IndexError):  # a matrix-less (table-based) RGB profile
        return False
    return all(abs(a - b) <= _SRGB_TOLERANCE for mine, yours in pairs for a, b in zip(mine, yours))


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
