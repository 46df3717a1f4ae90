"""What one stage optimises towards, and where its pixels start.

Content features are computed once per stage (no gradient); style Gram matrices
come from the engine's cache (memory -> disk -> compute).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from . import images
from .errors import EngineError
from .lbfgs import PIXEL_RANGE
from .losses import ObjectiveTargets, at_least_fp32, gram
from .optimise import network_input
from .targets import target_key

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine


def _features(engine: Engine, net, image_tensor: torch.Tensor, layers, pooling: str, precision: str):
    inputs = network_input(net.weights.preprocess(image_tensor), precision == "bf16")
    with torch.no_grad():
        features = net.module(inputs, frozenset(layers), pooling)
    return {name: at_least_fp32(value) for name, value in features.items()}


def style_target_key(style, side: int, settings, precision: str, weights_identity: str):
    """(cache key, the style image as a stage of `side` px sees it). `nst plan`
    asks the cache with the same key a render reads and writes."""
    resized = images.fit_longest_side(style, settings.style_side(side), upscale=False)
    layers = tuple(name for name, _ in settings.style_layers)
    key = target_key(images.image_digest(resized), resized.size, weights_identity, layers, settings.pooling, precision)
    return key, resized


def style_grams(engine: Engine, net, style, side: int, settings, precision: str):
    """Gram matrices of one style image at the style size for a stage, via the cache."""
    layers = tuple(name for name, _ in settings.style_layers)
    key, resized = style_target_key(style, side, settings, precision, net.weights.identity)
    images.check_size(resized.size, settings.deepest_layer(), name="style image")

    def compute() -> dict[str, torch.Tensor]:
        tensor = images.to_tensor(resized, device=engine.device, dtype=engine.dtype)
        features = _features(engine, net, tensor, layers, settings.pooling, precision)
        return {name: gram(features[name])[0] for name in layers}

    return engine.cache.get(key, layers, engine.device, compute)


def build_targets(engine: Engine, net, requests, prepared, side: int, size, precision: str):
    first = requests[0].settings
    content_images = [images.fit_longest_side(p.content, side, upscale=True) for p in prepared]
    for image in content_images:
        images.check_size(image.size, first.deepest_layer(), name="content image")
    content_t = torch.cat([images.to_tensor(im, device=engine.device, dtype=engine.dtype) for im in content_images])
    content_layers = dict(first.content_layers)
    content_features = _features(engine, net, content_t, content_layers, first.pooling, precision)

    style_layers = dict(first.style_layers)
    most_styles = max(len(p.styles) for p in prepared)
    per_image = []  # [B][S] -> {layer: [C, C]}
    blend = torch.zeros(len(requests), most_styles, device=engine.device, dtype=engine.dtype)
    for index, (request, prep) in enumerate(zip(requests, prepared)):
        grams = [style_grams(engine, net, s, side, request.settings, precision) for s in prep.styles]
        per_image.append(grams)
        blend[index, : len(grams)] = torch.tensor(request.settings.blend(len(grams)))
    style_targets = {}
    for layer in style_layers:
        stacked = []
        for grams in per_image:
            padding = [torch.zeros_like(grams[0][layer])] * (most_styles - len(grams))
            stacked.append(torch.stack([g[layer].to(engine.dtype) for g in grams] + padding))
        style_targets[layer] = torch.stack(stacked)

    def per_request(name: str) -> torch.Tensor:
        values = [float(getattr(r.settings, name)) for r in requests]
        return torch.tensor(values, device=engine.device, dtype=engine.dtype)

    targets = ObjectiveTargets(
        content=content_features,
        style=style_targets,
        blend=blend,
        content_layer_weights=content_layers,
        style_layer_weights=style_layers,
        content_weight=per_request("content_weight"),
        style_weight=per_request("style_weight"),
        tv_weight=per_request("tv_weight"),
        use_tv=any(r.settings.tv_weight > 0 for r in requests),
    ).with_scales()
    return targets, content_t


def initial_pixels(engine: Engine, requests, prepared, stage: int, size, content_t, previous):
    """Stage 0 (or a resumed stage) starts from init/checkpoint; later stages from the last."""
    resume = requests[0].resume
    if resume is not None and stage == resume.stage:
        pixels = resume.pixels.to(engine.device, engine.dtype)
        if tuple(pixels.shape[-2:]) != tuple(content_t.shape[-2:]):
            raise EngineError("the checkpoint was made at another size; delete it to start over")
        return pixels.clone()
    if previous is not None:
        w, h = size
        # Bicubic overshoots at edges; the optimiser keeps pixels in range, so start there.
        return F.interpolate(previous, size=(h, w), mode="bicubic", align_corners=False).clamp_(*PIXEL_RANGE)
    starts = [_init_one(engine, r, content_t[i : i + 1], size) for i, r in enumerate(requests)]
    return torch.cat(starts).contiguous()


def _init_one(engine: Engine, request, content: torch.Tensor, size) -> torch.Tensor:
    settings = request.settings
    if settings.init == "content":
        return content.clone()
    if settings.init == "noise":
        # A CPU generator keeps the same seed giving the same start on any device.
        generator = torch.Generator().manual_seed(settings.seed)
        noise = torch.rand(content.shape, generator=generator)
        return noise.to(engine.device, engine.dtype)
    image = request.init_image if request.init_image is not None else images.load_image(settings.init)
    image = images.fit_longest_side(image, max(size), upscale=True)
    image = image.resize(size)
    return images.to_tensor(image, device=engine.device, dtype=engine.dtype)
