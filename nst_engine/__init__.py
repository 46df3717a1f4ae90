"""Gatys et al. neural style transfer on VGG19 features, optimised with L-BFGS.

This package holds all of the torch code. It knows nothing of manifests, queues,
output folders, HTML or terminals: it takes a device, PIL images and a frozen
`RenderSettings`, and returns an image with its statistics.
"""

ENGINE_VERSION = "6"  # bump when a change alters the pixels a setting produces

from .errors import (  # noqa: E402
    EngineError,
    ImageError,
    ImageTooSmallError,
    RenderCancelledError,
    RenderDivergedError,
    SettingsError,
    WeightsError,
)
from .settings import PRESETS, RenderSettings, preset  # noqa: E402

__all__ = [
    "ENGINE_VERSION",
    "PRESETS",
    "EngineError",
    "ImageError",
    "ImageTooSmallError",
    "RenderCancelledError",
    "RenderDivergedError",
    "RenderSettings",
    "SettingsError",
    "WeightsError",
    "preset",
]
