"""Progress callbacks, cancellation into a checkpoint, and resuming from it."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from engine_helpers import tiny

from bench.objective import stage_context
from nst_engine.engine import Engine
from nst_engine.errors import EngineError, RenderCancelledError
from nst_engine.optimise import run_stage
from nst_engine.types import Checkpoint

pytestmark = pytest.mark.slow


def cancel_after(calls: int):
    """should_cancel that says no `calls` times, then yes."""
    asked = []

    def should_cancel() -> bool:
        asked.append(1)
        return len(asked) > calls

    return should_cancel


def test_on_step_reports_every_n_iterations_over_all_stages(content, starry):
    engine = Engine("cpu", cache_dir=None, progress_every=3)
    steps = []
    result = engine.render(content, [starry], tiny(size=64, scales=(32, 64), iterations=7), on_step=steps.append)
    # Every 3rd iteration of each stage, plus each stage's last.
    assert [s.done for s in steps] == [3, 6, 7, 10, 13, 14]
    assert [s.iteration for s in steps] == [3, 6, 7, 3, 6, 7]
    assert [(s.stage, s.side) for s in steps] == [(0, 32)] * 3 + [(1, 64)] * 3
    assert {(s.stages, s.total, s.iterations, len(s.losses)) for s in steps} == {(2, 14, 7, 1)}
    assert result.stats.schedule == (32, 64) and result.stats.iterations == 14


def test_cancel_checkpoint_and_resume(content, starry):
    settings = tiny(size=48, iterations=20)
    engine = Engine("cpu", cache_dir=None, progress_every=1, checkpoint_every=10)
    saved: list[tuple[int, Checkpoint]] = []
    before = []
    uninterrupted = engine.render(
        content, [starry], settings, on_step=before.append, on_checkpoint=lambda i, c: saved.append((i, c))
    )
    assert [(i, c.iteration) for i, c in saved] == [(0, 10)]  # every 10, not at the end

    saved.clear()
    with pytest.raises(RenderCancelledError) as error:
        engine.render(
            content, [starry], settings, should_cancel=cancel_after(10),
            on_checkpoint=lambda i, c: saved.append((i, c)),
        )  # fmt: skip
    assert "iteration 10" in str(error.value) and "\n" not in str(error.value)
    index, checkpoint = saved[-1]
    assert (index, checkpoint.stage, checkpoint.iteration) == (0, 0, 10)
    assert checkpoint.pixels.shape == (1, 3, 32, 48) and checkpoint.pixels.dtype == torch.float32

    # A checkpoint survives torch.save / weights-only load, as the pipeline stores it.
    buffer = io.BytesIO()
    torch.save(checkpoint.to_state(), buffer)
    buffer.seek(0)
    restored = Checkpoint.from_state(torch.load(buffer, weights_only=True))
    steps = []
    resumed = engine.render(content, [starry], settings, resume=restored, on_step=steps.append)
    assert resumed.stats.resumed_from == 10
    assert [s.done for s in steps] == list(range(11, 21))  # only the remaining iterations ran
    # It starts from the very pixels the uninterrupted render had at iteration 10.
    assert steps[0].losses[0] == pytest.approx(before[10].losses[0], rel=1e-6)
    # L-BFGS starts a fresh history (its first step is a cautious one), so not the
    # same pixels, but a comparable render: 13-17% apart here in fp32 and bf16.
    assert resumed.stats.losses["total"] < 0.75 * steps[0].losses[0]
    assert resumed.stats.losses["total"] == pytest.approx(uninterrupted.stats.losses["total"], rel=0.25)


def test_checkpoints_keep_the_seconds_so_far_and_a_resumed_render_reports_its_whole_time(content, starry):
    settings = tiny(size=48, iterations=20)
    engine = Engine("cpu", cache_dir=None, checkpoint_every=5)
    saved: list[Checkpoint] = []
    with pytest.raises(RenderCancelledError):
        engine.render(content, [starry], settings, should_cancel=cancel_after(12),
                      on_checkpoint=lambda i, c: saved.append(c))
    assert [c.iteration for c in saved] == [5, 10, 12]  # every 5, and where it was cancelled
    assert 0 < saved[0].seconds < saved[1].seconds < saved[2].seconds
    # Said to have taken 100 s before (more than this tiny render can), to tell the parts apart.
    earlier = dataclasses.replace(saved[-1], seconds=100.0)
    later: list[Checkpoint] = []
    result = engine.render(content, [starry], settings, resume=earlier, on_checkpoint=lambda i, c: later.append(c))
    assert result.stats.seconds_before_resume == 100.0
    assert 100.0 < result.stats.seconds < 200.0
    # Interrupted again, its checkpoint would count both runs.
    assert [c.iteration for c in later] == [15] and 100.0 < later[0].seconds < result.stats.seconds


def test_a_checkpoint_from_before_seconds_were_kept_loads_as_0_seconds():
    old = {"stage": 1, "iteration": 7, "pixels": torch.rand(1, 3, 4, 4)}
    buffer = io.BytesIO()
    torch.save(old, buffer)
    checkpoint = Checkpoint.from_bytes(buffer.getvalue())
    assert (checkpoint.stage, checkpoint.iteration, checkpoint.seconds) == (1, 7, 0.0)
    assert Checkpoint.from_bytes(dataclasses.replace(checkpoint, seconds=2.5).to_bytes()).seconds == 2.5


def test_resume_in_a_later_stage_skips_the_earlier_ones(content, starry):
    settings = tiny(size=48, scales=(32, 48), iterations=4)
    engine = Engine("cpu", cache_dir=None, progress_every=1)
    saved = []
    with pytest.raises(RenderCancelledError):
        engine.render(
            content, [starry], settings, should_cancel=cancel_after(6),
            on_checkpoint=lambda i, c: saved.append(c),
        )  # fmt: skip
    (checkpoint,) = saved
    assert (checkpoint.stage, checkpoint.iteration) == (1, 2)
    steps = []
    result = engine.render(content, [starry], settings, resume=checkpoint, on_step=steps.append)
    assert result.stats.resumed_from == 4 + 2
    assert [(s.stage, s.done) for s in steps] == [(1, 7), (1, 8)]
    assert result.image.size == (48, 32)


def test_a_checkpoint_of_another_size_is_refused(engine, content, starry):
    wrong = Checkpoint(0, 2, torch.rand(1, 3, 20, 30))
    with pytest.raises(EngineError, match="another size"):
        engine.render(content, [starry], tiny(), resume=wrong)


def test_a_stage_context_built_without_divergence_flags_runs_every_iteration(content, starry):
    # bench.objective builds a StageContext the way code outside the engine does.
    ctx, x = stage_context(Engine("cpu", cache_dir=None), content, starry, tiny(size=32, iterations=4))
    reports = []
    ctx.progress_every, ctx.on_step = 1, reports.append
    run_stage(ctx, x, 0)
    assert [r.iteration for r in reports] == [1, 2, 3, 4] and ctx.diverged == [False]
