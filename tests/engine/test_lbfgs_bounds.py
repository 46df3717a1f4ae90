"""The pixel box: the engine's optimisers keep every pixel in 0–1, where the
saved image will cut it anyway, and L-BFGS learns from the step it really took."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from engine_helpers import tiny

from nst_engine import lbfgs, optimise
from nst_engine.engine import Engine
from nst_engine.lbfgs import PIXEL_RANGE, BatchedLBFGS, make_optimizer
from nst_engine.stage_targets import initial_pixels


def test_a_step_is_cut_at_the_box_and_recorded_as_taken():
    x = torch.tensor([[0.5, 0.95, 0.02, 0.5]], dtype=torch.float64)
    grad = torch.tensor([[0.1, -1.0, 1.0, -0.1]], dtype=torch.float64)  # -g pushes pixels 1, 2 out
    start = x.clone()
    free, boxed = x.clone(), BatchedLBFGS(x, history=5, lr=1.0, first_step=0.5, bounds=(0.0, 1.0))
    BatchedLBFGS(free, history=5, lr=1.0, first_step=0.5).step(free, grad)
    boxed.step(x, grad)
    assert x.tolist() == [[free[0, 0].item(), 1.0, 0.0, free[0, 3].item()]]  # inside: the step as computed
    assert torch.allclose(boxed._prev_step, x - start, rtol=0, atol=1e-15)  # s: the move actually made


def test_bounded_lbfgs_finds_the_constrained_minimum_and_never_leaves_the_box():
    # A separable quadratic whose free minimum lies partly outside 0–1: the
    # minimum inside the box is that minimum clamped.
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 64, generator=generator, dtype=torch.float64) * 1.6 - 0.3
    curvature = torch.rand(2, 64, generator=generator, dtype=torch.float64) + 0.5
    x = torch.full_like(target, 0.5)
    optimizer = BatchedLBFGS(x, history=10, lr=1.0, first_step=0.125, bounds=(0.0, 1.0))
    for _ in range(60):
        optimizer.step(x, curvature * (x - target))
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert torch.allclose(x, target.clamp(0, 1), atol=1e-6)
    assert (target < 0).any() and (target > 1).any()  # the box binds on both sides


def test_adam_keeps_the_pixels_in_the_box():
    x = torch.tensor([[0.999, 0.001, 0.5]])
    adam = make_optimizer("adam", x, history=0, lr=0.1)
    for _ in range(5):
        adam.step(x, torch.tensor([[-1.0, 1.0, 0.0]]))  # pushes the first two out
    assert x[0, :2].tolist() == [1.0, 0.0]


def test_the_engine_asks_both_optimisers_for_the_pixel_range():
    like = torch.zeros(1, 3, 4, 4)
    assert PIXEL_RANGE == (0.0, 1.0)
    assert make_optimizer("lbfgs", like, history=7, lr=0.0).bounds == PIXEL_RANGE
    assert make_optimizer("lbfgs", like, history=7, lr=0.0, resuming=True).bounds == PIXEL_RANGE
    assert make_optimizer("adam", like, history=7, lr=0.0).bounds == PIXEL_RANGE


@pytest.mark.parametrize("bounded", [True, False])
def test_a_strong_style_render_ends_inside_the_box(monkeypatch, content, starry, bounded):
    """Run for real; the unbounded run shows these settings do push pixels out."""
    if not bounded:
        monkeypatch.setattr(lbfgs, "PIXEL_RANGE", None)
    finals = []

    def keep_final(ctx, x, start):
        finals.append(run_stage(ctx, x, start))
        return finals[-1]

    run_stage = optimise.run_stage
    monkeypatch.setattr("nst_engine.engine.run_stage", keep_final)
    engine = Engine("cpu", cache_dir=None)
    engine.render(content, [starry], tiny(size=64, iterations=30, style_weight=100.0))
    (x,) = finals
    inside = bool(x.min() >= 0.0 and x.max() <= 1.0)
    assert inside == bounded


def test_a_finer_stage_starts_inside_the_box():
    # Bicubic overshoots next to a hard edge; the next stage must start in range.
    previous = torch.zeros(1, 3, 8, 8)
    previous[..., 4:] = 1.0
    assert F.interpolate(previous, size=(16, 16), mode="bicubic", align_corners=False).max() > 1.0
    start = initial_pixels(None, [_Request()], None, 1, (16, 16), None, previous)
    assert start.shape == (1, 3, 16, 16) and start.min() >= 0.0 and start.max() <= 1.0


class _Request:
    resume = None
