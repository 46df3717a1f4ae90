"""How the contact sheet names and orders the variants of one style column.

A sweep over one pair (`style_weight: [1, 2, 10, 25]`) next to the pair's
plain job is meant to be read as a strip, left to right. The plain job has no
variant name of its own, so the sheet names it by its value of the swept
settings ("style_weight=5"), and a strip whose swept values are all numbers is
shown in numeric order (1, 2, 5, 10, 25), not in the order the jobs happened to
be listed (5, 1, 2, 10, 25).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .jobs import RenderJob, format_value


def order_variants(examples: Mapping[str, RenderJob]) -> tuple[list[str], list[str]]:
    """Variant names in the order to show them, and the label of each.

    examples: each variant of the column -> one of its jobs, in first-seen order.
    A column with only its plain job gets an empty label (no chip to show).
    """
    variants = list(examples)
    if variants == [""]:
        return variants, [""]
    settings = {variant: job.settings.to_dict() for variant, job in examples.items()}
    swept = [key for key in settings[variants[0]] if any(_names(key, v) for v in variants if v)]
    labels = {
        variant: variant or ",".join(f"{key}={format_value(settings[variant][key])}" for key in swept) or "default"
        for variant in variants
    }
    values = {variant: [settings[variant][key] for key in swept] for variant in variants}
    if swept and all(_is_number(x) for row in values.values() for x in row):
        variants.sort(key=lambda variant: values[variant])  # stable: ties keep their order
    return variants, [labels[variant] for variant in variants]


def _names(key: str, variant: str) -> bool:
    """Whether a variant name ("style_weight=10,tv_weight=1") sets `key`."""
    return re.search(rf"(?:^|,){re.escape(key)}=", variant) is not None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
