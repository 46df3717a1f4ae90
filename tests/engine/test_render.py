"""Whole renders with the real weights at 32–64 px: quality, determinism, options, failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import edge_correlation, max_pixel_diff, tiny
from PIL import Image

from nst_engine import optimise
from nst_engine.engine import Engine
from nst_engine.errors import RenderDivergedError
from nst_engine.types import RenderRequest

pytestmark = pytest.mark.slow


def _first_loss(engine: Engine, *args, **kwargs):
    steps = []
    result = engine.render(*args, on_step=steps.append, **kwargs)
    return steps[0].losses[0], result


def test_a_render_halves_the_style_loss_and_keeps_the_contents_structure(engine, content, starry):
    # Starting from the content, the content term is exactly 0: the first
    # reported loss (before any step) is the style term of the content image.
    start, result = _first_loss(engine, content, [starry], tiny(size=64, iterations=20))
    assert result.image.size == (64, 43)
    assert result.stats.losses["style"] <= 0.5 * start
    assert result.stats.losses["total"] < start

    reference = content.resize(result.image.size, Image.Resampling.LANCZOS)
    assert edge_correlation(result.image, reference) > 0.3
    # The measure can fail: noise and the painting itself share no structure with the cat.
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (43, 64, 3), dtype=np.uint8))
    assert abs(edge_correlation(noise, reference)) < 0.15
    assert abs(edge_correlation(starry.resize(result.image.size), reference)) < 0.15
    assert result.stats.losses["content.relu4_2"] < 1.0


def test_the_same_seed_gives_the_same_pixels(engine, content, starry):
    one, two, other = (
        engine.render(content, [starry], tiny(init="noise", seed=seed, iterations=3)).image
        for seed in (3, 3, 4)
    )
    assert one.tobytes() == two.tobytes()
    assert max_pixel_diff(one, other) > 10


def test_coarse_to_fine_renders_every_scale(engine, content, starry):
    result = engine.render(content, [starry], tiny(size=64, scales=(32, 64), iterations=2))
    assert result.stats.schedule == (32, 64)
    assert result.stats.learning_rate == 1.0  # L-BFGS's own, for the setting's 0
    assert result.stats.iterations == 4
    assert result.image.size == (64, 43)
    small = Image.new("RGB", (40, 30), (200, 10, 10))
    small.paste(content.resize((20, 15)), (10, 8))
    # A 40 px content is never enlarged to 64 unless upscale is set.
    kept = engine.render(small, [starry], tiny(size=64, scales=(32, 64), iterations=1))
    assert (kept.stats.schedule, kept.image.size) == ((32, 40), (40, 30))
    grown = engine.render(small, [starry], tiny(size=64, scales=(32, 64), iterations=1, upscale=True))
    assert (grown.stats.schedule, grown.image.size) == ((32, 64), (64, 48))


def _ycbcr(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("YCbCr"), dtype=np.float64)


def test_preserve_color_keeps_the_contents_chroma(engine, content, starry):
    settings = tiny(size=64, iterations=12)
    kept = engine.render(content, [starry], settings.with_overrides(preserve_color=True)).image
    free = engine.render(content, [starry], settings).image
    reference = _ycbcr(content.resize(kept.size, Image.Resampling.LANCZOS))
    chroma = lambda image: np.abs(_ycbcr(image)[..., 1:] - reference[..., 1:]).mean()  # noqa: E731
    luma = np.abs(_ycbcr(kept)[..., 0] - reference[..., 0]).mean()
    assert chroma(kept) < 1.5  # rounding through RGB only
    assert chroma(free) > 6.0  # without it the painting's colours come through
    assert luma > 3.0  # while the luminance did change


def test_adam_renders_and_reduces_the_loss(engine, content, starry):
    start, result = _first_loss(engine, content, [starry], tiny(size=64, iterations=10, optimizer="adam"))
    assert result.stats.losses["total"] < 0.7 * start
    assert result.stats.learning_rate == 0.02  # Adam's own, for the setting's 0


def test_a_blend_of_one_and_zero_is_the_first_style_alone(engine64, content, starry, cafe):
    settings = tiny(iterations=4)
    alone = engine64.render(content, [starry], settings)
    blended = engine64.render(content, [starry, cafe], settings.with_overrides(style_blend=(1.0, 0.0)))
    assert max_pixel_diff(alone.image, blended.image) <= 1
    assert blended.stats.losses["total"] == pytest.approx(alone.stats.losses["total"], rel=1e-9)
    other = engine64.render(content, [starry, cafe], settings.with_overrides(style_blend=(0.0, 1.0)))
    assert max_pixel_diff(alone.image, other.image) > 5


def _nan_for(monkeypatch, images: set[int]) -> list[int]:
    """Make the objective NaN for some images of a batch; count its calls."""
    real, calls = optimise.objective, []

    def poisoned(image, features, targets):
        calls.append(1)
        total, parts = real(image, features, targets)
        mask = torch.tensor([i in images for i in range(total.shape[0])])
        return torch.where(mask, torch.full_like(total, float("nan")), total), parts

    monkeypatch.setattr(optimise, "objective", poisoned)
    return calls


def test_a_nan_loss_raises_render_diverged(monkeypatch, engine, content, starry):
    calls = _nan_for(monkeypatch, {0})
    with pytest.raises(RenderDivergedError) as error:
        engine.render(content, [starry], tiny(iterations=50))
    message = str(error.value)
    assert "NaN" in message and "\n" not in message
    assert len(calls) <= 3  # stopped at the first report, not after 50 steps


def test_a_diverged_image_fails_alone_in_its_batch(monkeypatch, engine, content, starry):
    _nan_for(monkeypatch, {1})
    requests = [RenderRequest(content, (starry,), tiny(iterations=3, seed=s)) for s in (0, 1)]
    good, bad = engine.render_batch(requests)
    assert isinstance(bad, RenderDivergedError)
    assert good.image.size == (32, 21) and good.stats.batch_size == 2


@pytest.mark.parametrize("colour", [(128, 128, 128), (30, 60, 200)])
def test_a_uniform_result_raises_render_diverged(engine, starry, colour):
    # Content only, from a flat content: nothing moves, and a blank image is no result.
    flat = Image.new("RGB", (48, 32), colour)
    with pytest.raises(RenderDivergedError) as error:
        engine.render(flat, [starry], tiny(iterations=2, style_weight=0.0))
    assert "uniform" in str(error.value)
