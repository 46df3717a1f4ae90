"""How the contact sheet names and orders the variants of one style column.

A sweep over one pair (`style_weight: [1, 2, 10, 25]`) next to the pair's
plain job is meant to be read as a strip, left to right. The plain job has no
variant name of its own, so the sheet names it by its value of the swept
settings ("style_weight=5"), plus any other setting in which it differs from
the strip ("style_weight=5,optimizer=adam"); where the strip's own points
differ in a setting nobody swept (two entries' sweeps of one pair), every
point names it. A strip whose swept values are all numbers is
shown in numeric order (1, 2, 5, 10, 25), not in the order the jobs happened to
be listed (5, 1, 2, 10, 25).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from .jobs import RenderJob, format_value
from .labels import differing_settings


def order_variants(examples: Mapping[str, RenderJob],
                   varying: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """Variant names in the order to show them, and the label of each.

    examples: each variant of the column -> one of its jobs, in first-seen order.
    varying: settings in which the plain jobs stacked in this column's cells
    differ; the plain label leaves them out (each card's tag says them), or it
    would name one card's settings over all of them.
    A column with only its plain job gets an empty label (no chip to show).
    """
    variants = list(examples)
    if variants == [""]:
        return variants, [""]
    settings = {variant: job.settings.to_dict() for variant, job in examples.items()}
    swept = [key for key in settings[variants[0]] if any(_names(key, v) for v in variants if v)]
    mixed = [key for key in _mixed_in_the_sweep(examples, swept) if key not in varying]
    shown = [key for key in swept + _unlike_the_sweep(settings, swept) + mixed if key not in varying]

    def spelled(variant: str, keys: list[str]) -> str:
        return ",".join(f"{key}={format_value(settings[variant][key])}" for key in keys)

    labels = {
        variant: ",".join(filter(None, [variant, spelled(variant, mixed)])) if variant else (
            spelled(variant, shown) or ("as tagged" if varying else "default"))  # stacked cards' tags say it
        for variant in variants
    }
    keys = _reading_order(settings, swept, variants)
    variants.sort(key=keys.__getitem__)  # stable: ties keep their order
    return variants, [labels[variant] for variant in variants]


def _reading_order(settings: Mapping[str, dict], swept: list[str], variants: list[str]) -> dict[str, list]:
    """Each variant's sort key. Points that name the same settings are one sweep,
    and each sweep stays together, in the order first seen: two entries'
    sweeps of one pair (style_weight, then tv_weight) read as two runs, not one
    strip interleaved by a default value. Within a sweep, by its settings in the
    order the names give them (style_weight before preserve_color in
    "style_weight=10,preserve_color=true"), each setting's numbers by value (2
    before 10) and its other values (true, false; a list of scales) in the order
    the sweep listed them. The plain job sits in the first sweep, by its values."""
    named = {variant: _named_settings(variant, swept) for variant in variants if variant}
    sweeps = list(dict.fromkeys(named.values()))  # each sweep's settings, first seen first
    places = {}  # per swept setting, each variant's value or first-seen place
    for setting in swept:
        values = [settings[variant][setting] for variant in variants]
        numeric = all(_is_number(value) for value in values)
        places[setting] = values if numeric else [values.index(value) for value in values]

    def key(index: int, variant: str) -> list:
        group = sweeps.index(named[variant]) if variant else 0
        return [group, *(places[setting][index] for setting in (sweeps[group] if sweeps else ()))]

    return {variant: key(index, variant) for index, variant in enumerate(variants)}


def _mixed_in_the_sweep(examples: Mapping[str, RenderJob], swept: list[str]) -> list[str]:
    """Settings nobody swept that differ between the strip's own jobs: two
    entries' sweeps of one pair (one with `optimizer: adam`) share a strip,
    and each point must say which it is ("style_weight=2,optimizer=adam")."""
    points = [job for variant, job in examples.items() if variant]
    return [key for key in differing_settings(points) if key not in swept] if points else []


def _unlike_the_sweep(settings: Mapping[str, dict], swept: list[str]) -> list[str]:
    """The settings nobody swept in which the plain job differs from the sweep's
    own jobs (where those agree). A plain job from another entry (`optimizer:
    adam`) was labelled by its swept values alone, as if it were one more point
    of the strip: two chips read "pooling=max" over two different renders."""
    if "" not in settings:
        return []
    sweep = [values for variant, values in settings.items() if variant]
    plain = settings[""]
    return [key for key in plain if key not in swept
            and all(values[key] == sweep[0][key] for values in sweep) and plain[key] != sweep[0][key]]


def _named_settings(variant: str, swept: list[str]) -> tuple[str, ...]:
    """The swept settings a variant name sets, in the order it names them."""
    return tuple(sorted((key for key in swept if _names(key, variant)), key=lambda key: _named_at(key, variant)))


def _names(key: str, variant: str) -> bool:
    """Whether a variant name ("style_weight=10,tv_weight=1") sets `key`."""
    return _named_at(key, variant) is not None


def _named_at(key: str, variant: str) -> int | None:
    """Where a variant name sets `key`, or None where it does not."""
    found = re.search(rf"(?:^|,){re.escape(key)}=", variant)
    return found.start() if found else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
