"""Colour preservation by luminance-only transfer (Gatys et al. 2016,
"Preserving Color in Neural Artistic Style Transfer", section 3).

The engine renders on luminance images (Y replicated to three channels so the
RGB network still applies), after matching the style's luminance statistics to
the content's, then puts the content's chroma back. Y, Cb and Cr are PIL's
"YCbCr": full-range ITU-R BT.601, as in JPEG.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def luminance(image: Image.Image) -> Image.Image:
    """The Y channel of `image`, replicated to a 3-channel RGB image."""
    y = image.convert("YCbCr").getchannel("Y")
    return Image.merge("RGB", (y, y, y))


def match_luminance(style_luma: Image.Image, content_luma: Image.Image) -> Image.Image:
    """Remap the style's luminance linearly so its mean and std equal the content's.

    The paper's L_s' = (sigma_c / sigma_s) * (L_s - mu_s) + mu_c: without it a
    dark style would darken the whole result. Clipped to 0..255.
    """
    style = _y_values(style_luma)
    content = _y_values(content_luma)
    spread = style.std()
    # A flat style has no spread to rescale; its matched version is flat at the content's mean.
    gain = content.std() / spread if spread > 0 else 0.0
    matched = (style - style.mean()) * gain + content.mean()
    y = Image.fromarray(np.clip(np.rint(matched), 0, 255).astype(np.uint8))
    return Image.merge("RGB", (y, y, y))


def recombine_color(stylised_luma: Image.Image, color_source: Image.Image) -> Image.Image:
    """Y from the stylised render, Cb and Cr from `color_source` (resized to match), as RGB."""
    y = stylised_luma.convert("YCbCr").getchannel("Y")
    source = color_source
    if source.size != stylised_luma.size:
        source = source.resize(stylised_luma.size, Image.Resampling.LANCZOS)
    _, cb, cr = source.convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def _y_values(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("YCbCr").getchannel("Y"), dtype=np.float64)
