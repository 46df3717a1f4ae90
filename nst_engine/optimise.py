"""The explicit outer loop of one stage: forward, objective, backward, step.

Callbacks, cancellation, checkpoints and divergence checks happen between
steps. Loss values are read back to the host only every `progress_every`
steps, so on a GPU the loop queues work without waiting for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .errors import RenderCancelledError
from .lbfgs import make_optimizer
from .losses import ObjectiveTargets, objective
from .types import Checkpoint, StepInfo
from .vgg import Preprocess, VGG19Features


@dataclass
class StageContext:
    network: VGG19Features
    preprocess: Preprocess
    layers: frozenset[str]
    pooling: str
    bf16: bool
    targets: ObjectiveTargets
    optimizer: str
    lbfgs_history: int
    learning_rate: float
    stage: int
    stages: int
    side: int
    iterations: int
    done_before: int  # iterations finished in earlier stages
    total: int
    progress_every: int
    checkpoint_every: int
    on_step: Callable[[StepInfo], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    on_checkpoint: Callable[[int, Checkpoint], None] | None = None
    render_seconds: Callable[[], float] = lambda: 0.0  # so far, earlier runs included; for checkpoints
    diverged: list[bool] = field(default_factory=list)  # per image; shared with the caller

    def __post_init__(self) -> None:
        if not self.diverged:
            # A context built without the batch's flags (the bench builds its own):
            # all([]) is True, which would stop run_stage after one step.
            self.diverged = [False] * self.targets.content_weight.shape[0]


def evaluate(ctx: StageContext, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-image losses of `x`. The network may run in bf16; the objective never does."""
    features = ctx.network(network_input(ctx.preprocess(x), ctx.bf16), ctx.layers, ctx.pooling)
    return objective(x, features, ctx.targets)


def network_input(preprocessed: torch.Tensor, bf16: bool) -> torch.Tensor:
    """With bf16 precision the network's weights are bf16 and channels-last, so
    its input is too; the cast is differentiable, so the gradient still reaches
    the fp32 image. See Engine.network for why bf16 runs channels-last."""
    if not bf16:
        return preprocessed
    return preprocessed.to(torch.bfloat16, memory_format=torch.channels_last)


def run_stage(ctx: StageContext, x: torch.Tensor, start: int) -> torch.Tensor:
    """Optimise `x` in place from iteration `start` to `ctx.iterations`."""
    optimizer = make_optimizer(
        ctx.optimizer, x, history=ctx.lbfgs_history, lr=ctx.learning_rate, resuming=start > 0
    )
    for iteration in range(start, ctx.iterations):
        if ctx.should_cancel is not None and ctx.should_cancel():
            _checkpoint_all(ctx, x, iteration)
            raise RenderCancelledError(f"cancelled at stage {ctx.stage + 1}, iteration {iteration}")
        x.requires_grad_(True)
        losses, _ = evaluate(ctx, x)
        (grad,) = torch.autograd.grad(losses.sum(), x)
        x.requires_grad_(False)
        optimizer.step(x, grad)
        done = iteration + 1
        if done % ctx.progress_every == 0 or done == ctx.iterations:
            _report(ctx, done, losses)
        if ctx.checkpoint_every and done % ctx.checkpoint_every == 0 and done < ctx.iterations:
            _checkpoint_all(ctx, x, done)
        if all(ctx.diverged):
            break
    return x


def _report(ctx: StageContext, done: int, losses: torch.Tensor) -> None:
    values = losses.detach().float().cpu().tolist()  # the one host sync, every N steps
    for index, value in enumerate(values):
        if not math.isfinite(value):
            ctx.diverged[index] = True
    if ctx.on_step is not None:
        ctx.on_step(
            StepInfo(
                stage=ctx.stage,
                stages=ctx.stages,
                side=ctx.side,
                iteration=done,
                iterations=ctx.iterations,
                done=ctx.done_before + done,
                total=ctx.total,
                losses=tuple(values),
            )
        )


def _checkpoint_all(ctx: StageContext, x: torch.Tensor, iteration: int) -> None:
    if ctx.on_checkpoint is None:
        return
    pixels = x.detach().float().cpu()
    seconds = ctx.render_seconds()  # one moment for the whole batch
    for index in range(pixels.shape[0]):
        ctx.on_checkpoint(index, Checkpoint(ctx.stage, iteration, pixels[index : index + 1].clone(), seconds=seconds))
