"""A batch renders each image as if alone (float64, so only rounding separates them)."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import max_pixel_diff, tiny

from nst_engine.errors import EngineError
from nst_engine.types import Checkpoint, RenderRequest

pytestmark = pytest.mark.slow


def test_a_batch_matches_separate_renders(engine64, content, starry, cafe):
    base = tiny(iterations=6)
    requests = [
        RenderRequest(content, (starry,), base),
        RenderRequest(content, (cafe,), base.with_overrides(style_weight=20.0, init="noise", seed=7)),
        # Two styles next to one-style images: its targets are padded with a weight-0 slot.
        RenderRequest(content, (cafe, starry), base.with_overrides(style_blend=(1.0, 3.0), tv_weight=0.5)),
    ]
    together = engine64.render_batch(requests)
    for index, request in enumerate(requests):
        alone = engine64.render(request.content, request.styles, request.settings)
        batched = together[index]
        assert batched.stats.batch_size == 3 and alone.stats.batch_size == 1
        assert max_pixel_diff(batched.image, alone.image) <= 1, index
        assert set(batched.stats.losses) == set(alone.stats.losses)
        for name, value in alone.stats.losses.items():
            assert batched.stats.losses[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (index, name)
    # The three really are different renders.
    assert max_pixel_diff(together[0].image, together[1].image) > 10
    assert max_pixel_diff(together[0].image, together[2].image) > 10
    # Only the image that asked for total variation reports it, batched or not.
    assert "tv" not in together[0].stats.losses and together[2].stats.losses["tv"] > 0


def test_a_batch_needs_one_signature_and_no_checkpoint(engine64, content, starry):
    mixed = [
        RenderRequest(content, (starry,), tiny()),
        RenderRequest(content, (starry,), tiny(size=48)),
    ]
    with pytest.raises(EngineError, match="a batch needs"):
        engine64.render_batch(mixed)
    checkpoint = Checkpoint(0, 1, torch.zeros(1, 3, 21, 32))
    resumed = [RenderRequest(content, (starry,), tiny(), checkpoint)] * 2
    with pytest.raises(EngineError, match="checkpoint"):
        engine64.render_batch(resumed)


def test_a_bf16_batch_runs_channels_last_and_matches_separate_renders(engine, content, starry, cafe):
    # The bf16 path (channels-last network, NHWC Grams) with B > 1. bf16 rounding
    # may differ a little between batch shapes (equal on the development CPU).
    base = tiny(iterations=4, precision="bf16")
    requests = [
        RenderRequest(content, (starry,), base),
        RenderRequest(content, (cafe,), base.with_overrides(seed=3, init="noise")),
    ]
    together = engine.render_batch(requests)
    for index, request in enumerate(requests):
        alone = engine.render(request.content, request.styles, request.settings)
        assert together[index].stats.precision == alone.stats.precision == "bf16"
        assert together[index].stats.batch_size == 2
        assert together[index].stats.losses["total"] == pytest.approx(alone.stats.losses["total"], rel=0.01)
    assert max_pixel_diff(together[0].image, together[1].image) > 10
