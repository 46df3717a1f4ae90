"""What the engine sees of a decoded image: upright, in sRGB, as 8-bit RGB.

Torch-free (Pillow and numpy only), so the pipeline's parent process uses the
same conversion for the contact sheet's source thumbnails: a thumbnail that
converted on its own (a plain `convert("RGB")`) showed a 16-bit greyscale
photo as pure white and a half-transparent one on dark grey, while the engine
rendered them scaled and on white.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageOps

from .color_profile import to_srgb
from .errors import ImageError
from .image_files import ignore_exif_warnings

# Modes whose alpha we flatten onto white, the colour of paper behind a cut-out.
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "PA"})


def engine_view(image: Image.Image, label: str = "image") -> Image.Image:
    """`image` as the engine takes it: EXIF orientation applied, converted from
    its colour profile to sRGB, then made 8-bit RGB (to_rgb8)."""
    with warnings.catch_warnings():
        ignore_exif_warnings()
        upright = ImageOps.exif_transpose(image)
    return to_rgb8(to_srgb(upright), label)


def to_rgb8(image: Image.Image, label: str = "image") -> Image.Image:
    """8-bit RGB: deep greyscale scaled (not clipped), transparency flattened onto white."""
    mode = image.mode
    try:
        if mode in ("I", "F") or mode.startswith("I;16"):
            return Image.fromarray(deep_gray_to_8bit(np.asarray(image), mode)).convert("RGB")
        if mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    except ValueError:
        raise ImageError(f"{label} has colour mode '{mode}', which cannot be converted to RGB") from None


def deep_gray_to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64)
    if mode == "F":
        values = np.nan_to_num(values)
        # Float files come scaled 0..1 (scientific and HDR tools) or 0..255
        # (PIL's own convention); an image whose every value is <= 1 would be
        # black on the 0..255 reading, so take it as 0..1.
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
    else:
        # 16-bit PNG/TIFF decode as I;16 (older PIL: I). PIL's own convert("L")
        # clips at 255 rather than scaling; 65535 / 257 = 255 maps the full range.
        scale = 1 / 257
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
