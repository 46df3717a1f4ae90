"""One objective for every loss the bench compares: the engine's own, in fp32.

These helpers go through the engine's stage machinery (prepare -> targets ->
StageContext), so the bench scores exactly what the engine optimises, and they
turn that objective into pastiche's per-layer weights so both tools minimise the
same function.
"""

from __future__ import annotations

import functools

import torch
from PIL import Image

from nst_engine import images
from nst_engine.engine import Engine, stage_sizes
from nst_engine.losses import EPS
from nst_engine.optimise import StageContext, evaluate
from nst_engine.settings import RenderSettings
from nst_engine.stage_targets import build_targets
from nst_engine.types import RenderRequest


def stage_context(engine: Engine, content: Image.Image, style: Image.Image,
                  settings: RenderSettings) -> tuple[StageContext, torch.Tensor]:
    """The context `run_stage` would get for a one-stage render, and the content tensor."""
    request = RenderRequest(content, (style,), settings)
    prepared = [engine._prepare(request)]
    stages = stage_sizes(settings, prepared[0].content.size)
    if len(stages) != 1:
        raise ValueError(f"the bench renders one stage, got the schedule {[s for s, _ in stages]}")
    ((side, size),) = stages
    precision = engine.precision_for(settings)
    net = engine.network(settings.weights, precision)
    targets, content_t = build_targets(engine, net, [request], prepared, side, size, precision)
    ctx = StageContext(
        network=net.module, preprocess=net.weights.preprocess,
        layers=frozenset(targets.content) | frozenset(targets.style), pooling=settings.pooling,
        bf16=precision == "bf16", targets=targets, optimizer=settings.optimizer,
        lbfgs_history=settings.lbfgs_history, learning_rate=settings.learning_rate,
        stage=0, stages=1, side=side, iterations=settings.iterations, done_before=0,
        total=settings.iterations, progress_every=10**9, checkpoint_every=0,
    )
    return ctx, content_t


@functools.cache
def reference_engine() -> Engine:
    return Engine("cpu", cache_dir=None)


def common_loss(content: Image.Image, style: Image.Image, result: Image.Image,
                settings: RenderSettings) -> float:
    """The engine's objective of `result`, in fp32 on the CPU (the one common scale)."""
    reference = settings.with_overrides(precision="fp32")
    ctx, content_t = stage_context(reference_engine(), content, style, reference)
    x = images.to_tensor(result)
    if x.shape != content_t.shape:
        raise ValueError(f"result is {list(x.shape)}, the content {list(content_t.shape)}")
    with torch.no_grad():
        losses, _ = evaluate(ctx, x)
    return float(losses[0])


# How much larger pastiche's loss is than ours (see pastiche_weights).
PASTICHE_SCALE = 1e6


def pastiche_layer(name: str) -> str:
    """relu4_2 -> block4_relu2 (pastiche's names for the same VGG19 layers)."""
    kind, place = name[:-3], name[-3:]
    block, depth = place.split("_")
    return f"block{block}_{kind}{depth}"


def pastiche_weights(content: Image.Image, style: Image.Image, settings: RenderSettings) -> list[str]:
    """pastiche arguments that make its loss equal to the engine's objective.

    pastiche: Σ w_l · mse(F_l, P_l) + Σ w_l · mse(G_l, A_l) (Grams / h·w, Caffe
    BGR 0–255 input, like ours). Ours divides each layer by the mean square of
    its target and averages the layers by their weights, so w_l absorbs both.
    """
    reference = settings.with_overrides(precision="fp32")
    ctx, _ = stage_context(reference_engine(), content, style, reference)
    t = ctx.targets
    content_total = sum(t.content_layer_weights.values()) or 1.0
    style_total = sum(t.style_layer_weights.values()) or 1.0
    content_w = [
        settings.content_weight * (w / content_total) / (float(t.content[layer].pow(2).mean()) + EPS)
        for layer, w in t.content_layer_weights.items()
    ]
    style_w = [
        settings.style_weight * (w / style_total) / (float(t.style[layer][0, 0].pow(2).mean()) + EPS)
        for layer, w in t.style_layer_weights.items()
    ]
    return [
        "--content-layers", *(pastiche_layer(n) for n in t.content_layer_weights),
        "--content-layer-weights", *(repr(w) for w in content_w),
        "--style-layers", *(pastiche_layer(n) for n in t.style_layer_weights),
        "--style-layer-weights", *(repr(w) for w in style_w),
        # One common factor on both terms: the same minimiser and the same L-BFGS
        # path, but gradients well above torch.optim.LBFGS's tolerance_grad
        # (1e-7). Unscaled, our size-independent objective gives per-pixel
        # gradients below it at 256 px, and pastiche silently stopped moving.
        "--content-weight", repr(PASTICHE_SCALE), "--style-weights", repr(PASTICHE_SCALE), "--tv-weight", "0",
    ]
