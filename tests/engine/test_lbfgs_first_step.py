"""The engine's first L-BFGS step: a set size in pixels, except when resuming."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import tiny

from nst_engine import optimise
from nst_engine.engine import Engine
from nst_engine.errors import RenderCancelledError
from nst_engine.lbfgs import FIRST_STEP_PIXELS, BatchedLBFGS, make_optimizer


def test_first_step_moves_the_steepest_pixel_by_the_set_amount_per_image():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64, generator=generator)
    grad = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=generator)
    grad[1] *= 1e-6  # a tiny gradient gets the same pixel step: the size is in pixels
    start = x.clone()
    BatchedLBFGS(x, history=5, lr=0.5, first_step=0.125).step(x, grad)
    moved = x - start
    for image in range(2):
        assert moved[image].abs().max() == pytest.approx(0.125 * 0.5, rel=1e-12)
        scale = moved[image].abs().max() / grad[image].abs().max()
        assert torch.allclose(moved[image], -scale * grad[image], rtol=1e-12, atol=0)


def test_the_torch_rule_remains_for_no_first_step():
    # min(1, 1/‖g‖₁)·lr: what torch.optim.LBFGS does, and what a resumed stage uses.
    x = torch.zeros(1, 4, dtype=torch.float64)
    grad = torch.tensor([[0.5, -1.0, 1.5, 1.0]], dtype=torch.float64)  # ‖g‖₁ = 4
    BatchedLBFGS(x, history=5, lr=0.5, first_step=None).step(x, grad)
    assert torch.allclose(x, -0.5 * grad / 4, rtol=1e-12, atol=0)


def test_the_engine_takes_the_pixel_step_except_when_resuming():
    like = torch.zeros(1, 3, 4, 4)
    assert make_optimizer("lbfgs", like, history=7, lr=0.0).first_step == FIRST_STEP_PIXELS
    assert make_optimizer("lbfgs", like, history=7, lr=0.0, resuming=True).first_step is None


def test_a_resumed_stage_asks_for_the_cautious_first_step(monkeypatch, content, starry):
    asked = []

    def spy(*args, **kwargs):
        asked.append(kwargs["resuming"])
        return make_optimizer(*args, **kwargs)

    monkeypatch.setattr(optimise, "make_optimizer", spy)
    settings = tiny(size=32, iterations=6)
    engine = Engine("cpu", cache_dir=None, progress_every=1)
    saved, polls = [], []

    def cancel_before_the_fourth_iteration() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(RenderCancelledError):
        engine.render(content, [starry], settings, should_cancel=cancel_before_the_fourth_iteration,
                      on_checkpoint=lambda i, c: saved.append(c))
    assert asked == [False] and saved[0].iteration == 3
    engine.render(content, [starry], settings, resume=saved[0])
    assert asked == [False, True]
