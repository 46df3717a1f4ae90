"""Render settings: one frozen dataclass, defaults in exactly one place, named presets.

Manifests and command-line flags override fields through `with_overrides`, which
goes through `dataclasses.replace`, so every value is validated in one spot
(`__post_init__`). The fully resolved settings are plain data (`to_dict`), which
is what crosses process boundaries and what lands in each output's sidecar.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError
from .setting_checks import coerce, problems
from .setting_values import (
    COARSE_TO_FINE_ABOVE,
    DEFAULT_LEARNING_RATES,
    INIT_MODES,
    SMALLEST_RENDER_SIDE,
    LayerWeights,
    network_order,
)


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides the pixels of one render. Hashable and picklable."""

    size: int = 512  # longest side of the output, px
    upscale: bool = False  # render larger than the content image?
    iterations: int = 500  # optimiser steps per scale of the schedule
    content_layers: LayerWeights = (("relu4_2", 1.0),)
    style_layers: LayerWeights = (
        ("relu1_1", 1.0),
        ("relu2_1", 1.0),
        ("relu3_1", 1.0),
        ("relu4_1", 1.0),
        ("relu5_1", 1.0),
    )
    content_weight: float = 1.0
    style_weight: float = 5.0  # relative losses (losses.py): 5 is Gatys's usual look
    tv_weight: float = 0.0
    init: str = "content"  # "content", "noise", or a path to an image
    seed: int = 0
    pooling: str = "max"
    style_scale: float = 1.0  # style image side relative to the output side
    style_blend: tuple[float, ...] = ()  # one weight per style; empty = equal
    preserve_color: bool = False  # keep the content's colours (luminance transfer)
    scales: tuple[int, ...] = ()  # coarse-to-fine longest sides; empty = automatic
    optimizer: str = "lbfgs"
    learning_rate: float = 0.0  # 0 = the optimiser's own default
    lbfgs_history: int = 100
    weights: str = "caffe"  # "caffe", "torchvision", or a path to a .pth file
    precision: str = "auto"  # "auto": bf16 on CUDA and bf16-capable CPUs, else fp32

    def __post_init__(self) -> None:
        for name, message, *part in problems(self):
            raise SettingsError(name, message, *part)  # the first problem, as the field it names

    # -- derived values ------------------------------------------------------
    def schedule(self) -> tuple[int, ...]:
        """Longest sides to render at, coarse to fine, ending at `size`."""
        if self.scales:
            return tuple(sorted(set(self.scales) | {self.size}))
        return _halvings(self.size)

    def sides_for(self, content_longest_side: int) -> tuple[int, ...]:
        """The schedule for a content image with this longest side: never larger
        than the image unless `upscale` (the engine's stages and the plan's both).
        The automatic schedule is worked out from the side really rendered, so a
        451 px photo renders the same way under `size: 600` as under `size: 451`."""
        final = self.size if self.upscale else min(self.size, content_longest_side)
        if not self.scales:
            return _halvings(final)
        return tuple(side for side in self.schedule() if side < final) + (final,)

    def style_side(self, side: int) -> int:
        """The longest side a style image is scaled to for a stage of `side` px."""
        return max(1, round(side * self.style_scale))

    def blend(self, style_count: int) -> tuple[float, ...]:
        """Normalised blend weights for `style_count` styles."""
        raw = self.style_blend or (1.0,) * style_count
        if len(raw) != style_count:
            raise SettingsError(
                "style_blend", f"has {len(raw)} weight{'s' * (len(raw) != 1)} for "
                f"{style_count} style{'s' * (style_count != 1)}: give one weight per style"
            )
        total = sum(raw)
        return tuple(w / total for w in raw)

    def init_file(self) -> str | None:
        """The image the render starts from, when `init` names a file rather than a mode."""
        return None if self.init in INIT_MODES else self.init

    def deepest_layer(self) -> str:
        names = [name for name, _ in self.content_layers + self.style_layers]
        order = network_order()
        return max(names, key=order.index)

    def resolved_precision(self, device_type: str, cpu_has_bf16: bool = False) -> str:
        """`auto`: bf16 convolutions on CUDA, and on CPUs with native bf16 (AVX512-BF16,
        AMX) where they measured ~1.9x faster; fp32 elsewhere."""
        if self.precision != "auto":
            return self.precision
        if device_type == "cuda" or (device_type == "cpu" and cpu_has_bf16):
            return "bf16"
        return "fp32"

    def resolved_learning_rate(self) -> float:
        """The learning rate the optimiser uses: the setting, or the optimiser's own for 0."""
        return self.learning_rate or DEFAULT_LEARNING_RATES[self.optimizer]

    def with_overrides(self, **changes: Any) -> RenderSettings:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SettingsError(unknown[0], "is not a render setting")
        return dataclasses.replace(self, **{k: coerce(k, v) for k, v in changes.items()})

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["content_layers"] = dict(self.content_layers)
        data["style_layers"] = dict(self.style_layers)
        data["style_blend"] = list(self.style_blend)
        data["scales"] = list(self.scales)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderSettings:
        return cls().with_overrides(**data)


# Settings that may differ between the images of one batch: each image keeps its
# own weights, seed, init, blend and colour handling; everything else is shared.
PER_IMAGE_SETTINGS = frozenset(
    {"content_weight", "style_weight", "tv_weight", "init", "seed", "style_blend", "preserve_color", "style_scale"}
)


def batch_signature(settings: RenderSettings) -> tuple:
    """Renders whose signatures (and content sizes) match can share one batch."""
    return tuple(
        (name, getattr(settings, name)) for name in setting_names() if name not in PER_IMAGE_SETTINGS
    )


def setting_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(RenderSettings))


PRESETS: dict[str, dict[str, Any]] = {
    # Quick look at a pairing: small and few steps.
    "preview": {"size": 256, "iterations": 100},
    # The paper's setup at a print-friendly size.
    "gatys": {"size": 512, "iterations": 500},
    # Large output; the schedule goes coarse-to-fine automatically above 512 px.
    "poster": {"size": 1024, "iterations": 400, "tv_weight": 1.0},
}


def preset(name: str) -> RenderSettings:
    if name not in PRESETS:
        raise SettingsError("preset", f"unknown preset '{name}' (expected one of {', '.join(PRESETS)})")
    return RenderSettings().with_overrides(**PRESETS[name])


def _halvings(side: int) -> tuple[int, ...]:
    """`side`, preceded by its halvings down to at most COARSE_TO_FINE_ABOVE."""
    sides = [side]
    while sides[0] > COARSE_TO_FINE_ABOVE:
        sides.insert(0, max(sides[0] // 2, SMALLEST_RENDER_SIDE))
    return tuple(sides)
