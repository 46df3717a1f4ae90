"""Validation of render settings, run by RenderSettings.__post_init__ for every
value however it arrives (defaults, presets, manifests, flags, sidecars)."""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from .setting_values import (
    FEATURE_LAYERS,
    OPTIMIZERS,
    POOLINGS,
    PRECISIONS,
    SMALLEST_RENDER_SIDE,
    LayerWeights,
)

if TYPE_CHECKING:
    from .settings import RenderSettings


def coerce(name: str, value: Any) -> Any:
    """Accept the shapes a YAML file naturally gives (lists, dicts, ints for floats).

    Only well-formed shapes are converted; anything else is passed through as
    written, so `problems` can say what was expected and show what was given
    (`float(True)` or `float("2")` here would hide a mistake).
    """
    if name in ("content_layers", "style_layers"):
        return _coerce_layers(value)
    if name in ("style_blend", "scales") and isinstance(value, list):
        value = tuple(value)
    if name == "scales" and isinstance(value, tuple):
        # [256, 5.12e2] is [256, 512], as `size: 5.12e2` is 512; 256.5 is still refused.
        return tuple(int(side) if isinstance(side, float) and side.is_integer() else side for side in value)
    if name == "style_blend" and isinstance(value, tuple) and all(map(_is_number, value)):
        return tuple(map(to_float, value))
    if name in _FLOAT_FIELDS and _is_number(value):
        return to_float(value)  # 1000 and 1000.0 are one setting (and one job id)
    if name in _INT_FIELDS and isinstance(value, float) and value.is_integer():
        return int(value)  # `iterations: 1e3` is 1000 (and 1000's job id); 1000.5 is still refused
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


SHOWN_CHARACTERS = 80  # of a value quoted in a message


def _show(value: Any) -> str:
    """A value as a YAML or JSON file spells it (`true`, not `True`), cut short:
    YAML aliases can nest a few lines into a value billions of characters long."""
    text = _spell(value, SHOWN_CHARACTERS + 1)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS - 3] + "..."


def _spell(value: Any, budget: int) -> str:
    """`value` spelled out, stopping soon after `budget` characters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        items = value.items() if isinstance(value, dict) else value
        opening, closing = "{}" if isinstance(value, dict) else "[]"
        text = opening
        for index, item in enumerate(items):
            if len(text) > budget:
                return text
            text += ", " if index else ""
            text += f"{item[0]}: {_spell(item[1], budget - len(text))}" if isinstance(value, dict) \
                else _spell(item, budget - len(text))
        return text + closing
    return repr(value)[:budget + 1]


LARGEST_SIDE = 8192  # px, of an output
SMALLEST_SEED, LARGEST_SEED = -(2**63), 2**64 - 1

_FLOAT_FIELDS = ("content_weight", "style_weight", "tv_weight", "style_scale", "learning_rate")
_INT_FIELDS = ("size", "iterations", "seed", "lbfgs_history")
_BOOL_FIELDS = ("upscale", "preserve_color")


def problems(s: RenderSettings):
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
    if not SMALLEST_RENDER_SIDE <= s.size <= LARGEST_SIDE:
        yield "size", f"must be between {SMALLEST_RENDER_SIDE} and {LARGEST_SIDE} px, got {s.size}"
    if not 1 <= s.iterations <= 100_000:
        yield "iterations", f"must be between 1 and 100000, got {s.iterations}"
    if not SMALLEST_SEED <= s.seed <= LARGEST_SEED:
        # What torch's generator takes; past it every job failed with an OverflowError.
        yield "seed", f"must be a whole number between {SMALLEST_SEED} and {LARGEST_SEED}, got {_show(s.seed)}"
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
    for index, side in enumerate(s.scales):  # the index too, so a manifest can point at its line
        if isinstance(side, bool) or not isinstance(side, int) or side < SMALLEST_RENDER_SIDE:
            yield "scales", f"must be whole sizes of at least {SMALLEST_RENDER_SIDE} px, got {_show(side)}", index
            return
        if side > s.size:
            yield "scales", f"must not exceed size ({s.size}), got {_show(side)}", index
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
    # Every bad layer in one message (settings stop at a field's first problem,
    # and a list with two typos took two tries), at the first one's line.
    found, expected = [], " (expected e.g. relu1_1 … relu5_4, conv4_2, pool3)"
    for layer, weight in layers:
        if layer not in FEATURE_LAYERS:
            close = _closest_layer(layer)
            hint = f" (did you mean '{close}'?)" if close else expected
            expected = expected if close else ""  # said once
            found.append((layer, f"unknown layer '{layer}'{hint}"))
        elif not math.isfinite(weight) or weight < 0:
            found.append((layer, f"weight of '{layer}' must be a finite non-negative number"))
    if found:
        yield name, "; ".join(message for _, message in found), found[0][0]
        return
    # The style layers' weights are normalised to sum to 1, which all-zero
    # weights cannot be: the render would quietly return the photo. style_weight
    # is the one switch for no style.
    if name == "style_layers" and all(w == 0 for _, w in layers):
        yield name, "weights are normalised to sum to 1, so one must be above 0 (for no style, set style_weight: 0)"


def _closest_layer(layer: str) -> str | None:
    """The one layer a typo is closest to; none where several are as close
    (`relu3_l` is as near relu3_1 as relu3_4: naming either would mislead)."""
    matches = difflib.get_close_matches(layer, FEATURE_LAYERS, n=2, cutoff=0.75)
    if len(matches) == 2 and _likeness(layer, matches[0]) == _likeness(layer, matches[1]):
        return None
    return matches[0] if matches else None


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _choice_problems(s: RenderSettings):
    for name, allowed in (("pooling", POOLINGS), ("optimizer", OPTIMIZERS), ("precision", PRECISIONS)):
        if getattr(s, name) not in allowed:
            yield name, f"must be one of {', '.join(allowed)}, got {getattr(s, name)!r}"
    if not isinstance(s.init, str) or not s.init:
        yield "init", "must be 'content', 'noise' or an image path"
    if not isinstance(s.weights, str) or not s.weights:
        yield "weights", "must be 'caffe', 'torchvision' or a path to a .pth file"
