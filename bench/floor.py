"""(a) Floor: the engine's seconds per iteration ÷ one bare VGG19 forward + backward.

The bare pass is what no implementation of this objective can avoid: the
network to relu5_1 and back to the input, in the same precision the engine
resolves to. The engine's extra cost per iteration is the Gram matrices and
losses (in fp32), the casts around them, and the L-BFGS step.

Engine s/iter = (T_N - T_M) / (N - M) of two whole `render` calls on a warm
engine: weights, style targets (memory cache), content features, the first
iteration's allocations and the final evaluation cost the same in both, so they
cancel. A short N leaves the L-BFGS history (100 pairs) partly empty, so row
a4 times one step with a full history on its own.
"""

from __future__ import annotations

import copy

import torch

from nst_engine.engine import Engine
from nst_engine.images import fit_longest_side, load_image, to_tensor
from nst_engine.lbfgs import BatchedLBFGS
from nst_engine.optimise import evaluate, network_input
from nst_engine.settings import RenderSettings

from .common import (
    CONTENTS,
    STYLES,
    Config,
    Row,
    interleaved,
    median,
    ratio_row,
    square_crop,
    timed,
)
from .objective import stage_context


def floor_rows(cfg: Config, device: str) -> list[Row]:
    engine = Engine(device, cache_dir=None, progress_every=10**9)
    style = load_image(STYLES[0])
    photo = square_crop(load_image(CONTENTS[0]))
    rows = [
        _floor_row(f"a{index}", cfg, engine, fit_longest_side(photo, side, upscale=True), style, n, m, device)
        for index, (side, n, m) in enumerate(cfg.floor, start=1)
    ]
    return rows + _breakdown(cfg, engine, photo, style, device, len(rows))


def _floor_row(key: str, cfg: Config, engine: Engine, content, style, n: int, m: int, device: str) -> Row:
    side = max(content.size)
    settings = RenderSettings(size=side, iterations=n)
    precision = engine.precision_for(settings)
    bare = _bare_pass(engine, content, settings, device)

    def render(iterations: int) -> float:
        quick = settings.with_overrides(iterations=iterations)
        return timed(lambda: engine.render(content, [style], quick), device)

    render(m)  # warm-up: weights, style targets, allocator
    bare()
    times = interleaved({"bare": bare, "n": lambda: render(n), "m": lambda: render(m)}, cfg.repeats)
    per_iteration = median([(tn - tm) / (n - m) for tn, tm in zip(times["n"], times["m"])])
    return ratio_row(
        key, f"floor {side}×{side} ({precision}): engine s/iter ÷ bare VGG19 fwd+bwd to relu5_1",
        per_iteration, median(times["bare"]), bound=("<=", 1.10),
    )


def _bare_pass(engine: Engine, content, settings: RenderSettings, device: str, *, other_layout: bool = False):
    """One forward to relu5_1 and backward to a leaf input, with the engine's own
    network and input for its precision (bf16 and channels-last when bf16).
    other_layout: the same, in the memory layout the engine did not choose."""
    bf16 = engine.precision_for(settings) == "bf16"
    net = engine.network(settings.weights, engine.precision_for(settings))
    module, layout = net.module, None
    if other_layout:
        layout = torch.contiguous_format if bf16 else torch.channels_last
        module = copy.deepcopy(net.module).to(memory_format=layout)
    image = net.weights.preprocess(to_tensor(content, device=device))

    def once() -> float:
        def work() -> None:
            x = image.clone().requires_grad_(True)
            inputs = network_input(x, bf16)
            if layout is not None:
                inputs = inputs.contiguous(memory_format=layout)
            module(inputs, {"relu5_1"}, settings.pooling)["relu5_1"].sum().backward()

        return timed(work, device)

    return once


def _breakdown(cfg: Config, engine: Engine, photo, style, device: str, done: int) -> list[Row]:
    """Where the engine's extra time goes, at the largest floor size (information)."""
    side = cfg.floor[-1][0]
    content = fit_longest_side(photo, side, upscale=True)
    settings = RenderSettings(size=side, iterations=1)
    ctx, content_t = stage_context(engine, content, style, settings)
    bare = _bare_pass(engine, content, settings, device)
    other_layout = _bare_pass(engine, content, settings, device, other_layout=True)

    def with_objective() -> float:
        def work() -> None:
            x = content_t.clone().requires_grad_(True)
            losses, _ = evaluate(ctx, x)
            torch.autograd.grad(losses.sum(), x)

        return timed(work, device)

    optimizer = _full_history(content_t, settings.lbfgs_history)
    x, grad = content_t.clone(), torch.randn_like(content_t)
    step = lambda: timed(lambda: optimizer.step(x, grad), device)  # noqa: E731
    fns = {"bare": bare, "objective": with_objective, "step": step, "other_layout": other_layout}
    for fn in fns.values():
        fn()
    times = interleaved(fns, cfg.repeats)
    base = median(times["bare"])
    precision = engine.precision_for(settings)
    ours, other = ("channels-last", "NCHW") if precision == "bf16" else ("NCHW", "channels-last")
    return [
        ratio_row(f"a{done + 1}", f"{side}px ({precision}): fwd + objective + bwd ÷ bare fwd+bwd (Grams, losses, casts)",
                  median(times["objective"]), base),
        ratio_row(f"a{done + 2}", f"{side}px: one L-BFGS step, full history {settings.lbfgs_history} ÷ bare fwd+bwd",
                  median(times["step"]), base),
        ratio_row(f"a{done + 3}", f"{side}px ({precision}): bare fwd+bwd in {other} ÷ in the engine's {ours} layout",
                  median(times["other_layout"]), base),
    ]


def _full_history(like: torch.Tensor, history: int) -> BatchedLBFGS:
    """An optimiser whose every history slot holds an accepted pair, filled by real
    steps on a separable quadratic (its curvature test always passes). The step's
    cost depends on the shapes only, not on what the pairs hold."""
    generator = torch.Generator(device=like.device).manual_seed(0)
    curvature = torch.rand(like.shape, generator=generator, device=like.device) + 0.5
    x = like.clone()
    optimizer = BatchedLBFGS(x, history)
    for _ in range(history + 1):
        optimizer.step(x, (x - like) * curvature + 1e-3)
    return optimizer
