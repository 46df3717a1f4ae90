"""Render settings: one frozen dataclass, defaults in exactly one place, named presets.

Manifests and command-line flags override fields through `with_overrides`, which
goes through `dataclasses.replace`, so every value is validated in one spot
(`__post_init__`). The fully resolved settings are plain data (`to_dict`), which
is what crosses process boundaries and what lands in each output's sidecar.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError

# Layer names follow the paper: reluB_K is the K-th ReLU of block B.
VGG19_BLOCK_DEPTHS = (2, 2, 4, 4, 4)
RELU_LAYERS = tuple(
    f"relu{block}_{depth}"
    for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1)
    for depth in range(1, count + 1)
)
CONV_LAYERS = tuple(name.replace("relu", "conv") for name in RELU_LAYERS)
POOL_LAYERS = tuple(f"pool{block}" for block in range(1, 6))
FEATURE_LAYERS = frozenset(RELU_LAYERS + CONV_LAYERS + POOL_LAYERS)

INIT_MODES = ("content", "noise")
POOLINGS = ("max", "avg")
OPTIMIZERS = ("lbfgs", "adam")
# What `learning_rate: 0` means for each optimiser (pixels on the 0–1 scale).
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02}
PRECISIONS = ("auto", "fp32", "bf16")
BUILTIN_WEIGHTS = ("caffe", "torchvision")

# Above this longest side the default schedule renders coarse-to-fine, halving
# down to at most this size first (DESIGN: work per iteration grows 4x per 2x).
COARSE_TO_FINE_ABOVE = 512
SMALLEST_RENDER_SIDE = 32

LayerWeights = tuple[tuple[str, float], ...]


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
        problems = list(_problems(self))
        if problems:
            name, message = problems[0]
            raise SettingsError(name, message)

    # -- derived values ------------------------------------------------------
    def schedule(self) -> tuple[int, ...]:
        """Longest sides to render at, coarse to fine, ending at `size`."""
        if self.scales:
            return tuple(sorted(set(self.scales) | {self.size}))
        sides = [self.size]
        while sides[0] > COARSE_TO_FINE_ABOVE:
            sides.insert(0, max(sides[0] // 2, SMALLEST_RENDER_SIDE))
        return tuple(sides)

    def blend(self, style_count: int) -> tuple[float, ...]:
        """Normalised blend weights for `style_count` styles."""
        raw = self.style_blend or (1.0,) * style_count
        if len(raw) != style_count:
            raise SettingsError(
                "style_blend", f"has {len(raw)} weights but there are {style_count} styles"
            )
        total = sum(raw)
        return tuple(w / total for w in raw)

    def deepest_layer(self) -> str:
        names = [name for name, _ in self.content_layers + self.style_layers]
        order = _network_order()
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
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

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


def _network_order() -> list[str]:
    order: list[str] = []
    for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1):
        for depth in range(1, count + 1):
            order += [f"conv{block}_{depth}", f"relu{block}_{depth}"]
        order.append(f"pool{block}")
    return order


def _coerce(name: str, value: Any) -> Any:
    """Accept the shapes a YAML file naturally gives (lists, dicts, ints for floats).

    Only well-formed shapes are converted; anything else is passed through as
    written, so `_problems` can say what was expected and show what was given
    (`float(True)` or `float("2")` here would hide a mistake).
    """
    if name in ("content_layers", "style_layers"):
        return _coerce_layers(value)
    if name in ("style_blend", "scales") and isinstance(value, list):
        value = tuple(value)
    if name == "style_blend" and isinstance(value, tuple) and all(map(_is_number, value)):
        return tuple(map(to_float, value))
    if name in _FLOAT_FIELDS and _is_number(value):
        return to_float(value)  # 1000 and 1000.0 are one setting (and one job id)
    return value


def _coerce_layers(value: Any) -> Any:
    if isinstance(value, str):
        return ((value, 1.0),)
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = [tuple(item) if isinstance(item, (list, tuple)) else (item, 1.0) for item in value]
    else:
        return value
    if all(len(p) == 2 and isinstance(p[0], str) and _is_number(p[1]) for p in pairs):
        return tuple((name, to_float(weight)) for name, weight in pairs)
    return value


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `true` where a number belongs is a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_float(value: int | float) -> float:
    """float(value), but an integer too big for a float is infinite (later refused
    as not finite) instead of an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _show(value: Any) -> str:
    """A value as a YAML or JSON file spells it: `true`, not `True`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_show, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)


_FLOAT_FIELDS = ("content_weight", "style_weight", "tv_weight", "style_scale", "learning_rate")
_INT_FIELDS = ("size", "iterations", "seed", "lbfgs_history")
_BOOL_FIELDS = ("upscale", "preserve_color")


def _problems(s: RenderSettings):
    for name in _INT_FIELDS:
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int):
            yield name, f"must be a whole number, got {_show(value)}"
            return
    for name in _FLOAT_FIELDS:
        value = getattr(s, name)
        if not _is_number(value) or not math.isfinite(value):
            yield name, f"must be a finite number, got {_show(value)}"
            return
        if value < 0:
            yield name, f"must not be negative, got {_show(value)}"
    for name in _BOOL_FIELDS:
        # Strict: a truthy "no" or "false" (quoted in YAML) would turn the option on.
        if not isinstance(getattr(s, name), bool):
            yield name, f"expected true or false, got {_show(getattr(s, name))}"
    if not SMALLEST_RENDER_SIDE <= s.size <= 8192:
        yield "size", f"must be between {SMALLEST_RENDER_SIDE} and 8192 px, got {s.size}"
    if not 1 <= s.iterations <= 100_000:
        yield "iterations", f"must be between 1 and 100000, got {s.iterations}"
    if not 1 <= s.lbfgs_history <= 1000:
        yield "lbfgs_history", f"must be between 1 and 1000, got {s.lbfgs_history}"
    if not 0.05 <= s.style_scale <= 4:
        yield "style_scale", f"must be between 0.05 and 4, got {s.style_scale}"
    if s.content_weight == 0 and s.style_weight == 0:
        yield "style_weight", "content_weight and style_weight cannot both be 0"
    yield from _layer_problems("content_layers", s.content_layers)
    yield from _layer_problems("style_layers", s.style_layers)
    yield from _choice_problems(s)
    yield from _scale_problems(s)
    yield from _blend_problems(s.style_blend)


def _scale_problems(s: RenderSettings):
    if not isinstance(s.scales, tuple):
        yield "scales", f"expected a list of sizes like [256, 512], got {_show(s.scales)}"
        return
    for side in s.scales:
        if isinstance(side, bool) or not isinstance(side, int) or not SMALLEST_RENDER_SIDE <= side <= s.size:
            yield "scales", f"must be whole sizes between {SMALLEST_RENDER_SIDE} and size ({s.size}), got {_show(side)}"
            return
    # The schedule runs coarse to fine whatever the order, but [512, 256] and
    # [256, 512] would be one render under two job ids; a repeat is a typo.
    if list(s.scales) != sorted(set(s.scales)):
        yield "scales", f"expected increasing sizes like [256, 512], got {_show(s.scales)}"


def _blend_problems(blend: Any):
    if not isinstance(blend, tuple) or not all(map(_is_number, blend)):
        yield "style_blend", f"expected a list of numbers, one weight per style, got {_show(blend)}"
    elif any(w < 0 or not math.isfinite(w) for w in blend) or (blend and sum(blend) <= 0):
        yield "style_blend", "weights must be finite, non-negative and not all 0"


def _layer_problems(name: str, layers: LayerWeights):
    well_formed = isinstance(layers, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and _is_number(p[1]) for p in layers
    )
    if not well_formed:
        yield name, f"expected layer names with weights like {{relu4_2: 1}}, got {_show(layers)}"
        return
    if name == "style_layers" and not layers:
        yield name, "must name at least one layer"
        return
    for layer, weight in layers:
        if layer not in FEATURE_LAYERS:
            yield name, f"unknown layer '{layer}' (expected e.g. relu1_1 … relu5_4, conv4_2, pool3)"
        elif not math.isfinite(weight) or weight < 0:
            yield name, f"weight of '{layer}' must be a finite non-negative number"


def _choice_problems(s: RenderSettings):
    for name, allowed in (("pooling", POOLINGS), ("optimizer", OPTIMIZERS), ("precision", PRECISIONS)):
        if getattr(s, name) not in allowed:
            yield name, f"must be one of {', '.join(allowed)}, got {getattr(s, name)!r}"
    if not isinstance(s.init, str) or not s.init:
        yield "init", "must be 'content', 'noise' or an image path"
    if not isinstance(s.weights, str) or not s.weights:
        yield "weights", "must be 'caffe', 'torchvision' or a path to a .pth file"


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
