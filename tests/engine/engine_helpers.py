"""Helpers the engine tests import (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nst_engine.images import fit_longest_side, load_image
from nst_engine.settings import RenderSettings

IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"


def sample(kind: str, name: str, side: int = 128) -> Image.Image:
    """A sample image shrunk once, so every render resizes a small picture."""
    return fit_longest_side(load_image(IMAGES / kind / f"{name}.jpg"), side)


def tiny(**changes) -> RenderSettings:
    """Settings for a quick render: 32 px, a few iterations."""
    return RenderSettings().with_overrides(**{"size": 32, "iterations": 5, **changes})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def max_pixel_diff(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return int(np.abs(pixels(a) - pixels(b)).max())


def luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("YCbCr"), dtype=np.float64)[..., 0]


def edge_correlation(a: Image.Image, b: Image.Image) -> float:
    """Pearson correlation of the luminance gradient magnitudes: ~1 for the same
    structure, ~0 for unrelated pictures. Computed in numpy, apart from the engine."""

    def magnitude(image: Image.Image) -> np.ndarray:
        y = luma(image)
        gx = y[1:-1, 2:] - y[1:-1, :-2]
        gy = y[2:, 1:-1] - y[:-2, 1:-1]
        return np.hypot(gx, gy).ravel()

    return float(np.corrcoef(magnitude(a), magnitude(b))[0, 1])
