"""The Gatys objective as a small table of pure functions over batched features.

Every function takes a batch (leading dimension B) and returns one value per
image, so a batch of renders is exactly a set of independent renders.

Normalisation (departs from the paper on purpose, see README "Loss scaling"):
- Gram matrices are averaged over positions (F Fᵀ / HW), so a texture has the
  same Gram at 256 px and at 1024 px. The paper's raw sum grows with HW.
- Content loss is a mean over elements; the paper's ½·sum grows with HW.
- Each layer's loss is divided by the mean square of its target, so layers
  (whose activations differ by orders of magnitude) and weight sources (Caffe
  0–255 vs torchvision 0–1 inputs) contribute comparably, and one preset keeps
  its balance across sizes and sources.
All of this is kept in fp32: fp16/bf16 Gram matrices overflow. (Only the
Gram's backward matmul runs in the network's dtype; see _SymmetricGram.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import torch

# Guards the per-layer normalisers against all-zero targets (e.g. a black image).
EPS = 1e-8


def at_least_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 up to fp32; fp64 (used by the equivalence tests) stays fp64."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def gram(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C], averaged over the H·W positions, in fp32 or wider.

    bf16 features are widened inside the Gram, so the matrix itself is always
    fp32. Channels-last features (the bf16 network's layout) are read as a
    [B, H·W, C] view and multiplied transposed, so neither layout is copied.
    """
    b, c, h, w = features.shape
    if features.is_contiguous() or not features.is_contiguous(memory_format=torch.channels_last):
        return _SymmetricGram.apply(features.reshape(b, c, h * w), False)
    return _SymmetricGram.apply(features.permute(0, 2, 3, 1).reshape(b, h * w, c), True)


class _SymmetricGram(torch.autograd.Function):
    """G = F Fᵀ / n in fp32, differentiated as dF = ((dG + dGᵀ) / n) F: one matmul.

    Autograd would differentiate bmm(F, Fᵀ) once per operand (two matmuls of the
    forward's size) and add them; the symmetry needs one. The 1/n goes on the
    small C×C matrix, not on the C×H·W result. The backward matmul runs in the
    features' own dtype: with a bf16 network the gradient is rounded to bf16 the
    moment it re-enters the network anyway, and a bf16 matmul (fp32 accumulation)
    is about 3× faster than an fp32 one on the development CPU. Measured in
    bench rows a2/a3; the gradient differs from the all-fp32 one by ~0.3%, bf16's
    own rounding.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, positions_first: bool) -> torch.Tensor:
        # flat: [B, C, n], or [B, n, C] when positions_first (channels-last input).
        ctx.save_for_backward(flat)  # the narrow tensor: half the memory of a widened copy
        ctx.positions_first = positions_first
        positions = flat.shape[1] if positions_first else flat.shape[2]
        direct = flat.dtype == torch.bfloat16 and _bf16_matmul_with_fp32_result(flat.device)
        # Direct: bf16 products accumulated and returned in fp32, still an fp32
        # Gram, at tensor-core speed and with no widened copy of the features.
        wide = flat if direct else at_least_fp32(flat)
        left, right = (wide.transpose(1, 2), wide) if positions_first else (wide, wide.transpose(1, 2))
        product = torch.bmm(left, right, out_dtype=torch.float32) if direct else torch.bmm(left, right)
        return product.div_(positions)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (flat,) = ctx.saved_tensors
        positions = flat.shape[1] if ctx.positions_first else flat.shape[2]
        symmetric = ((grad + grad.transpose(1, 2)) / positions).to(flat.dtype)
        if ctx.positions_first:
            return torch.bmm(flat, symmetric), None
        return torch.bmm(symmetric, flat), None


@functools.cache
def _bf16_matmul_with_fp32_result(device: torch.device) -> bool:
    """Whether bmm(..., out_dtype=float32) works here: on CUDA, not in the CPU build.

    The probe multiplies in both orientations gram() uses (F·Fᵀ and Fᵀ·F, each
    with one transposed view), batched, and checks the values, so a device
    that has the op for some layouts only falls back to widening."""
    flat = torch.arange(12, dtype=torch.bfloat16, device=device).reshape(2, 2, 3)  # [B, C, n]
    positions_first = flat.transpose(1, 2).contiguous()  # [B, n, C], as from channels-last
    expected = torch.bmm(flat.double(), flat.double().transpose(1, 2))
    try:
        results = (
            torch.bmm(flat, flat.transpose(1, 2), out_dtype=torch.float32),
            torch.bmm(positions_first.transpose(1, 2), positions_first, out_dtype=torch.float32),
        )
    except (NotImplementedError, RuntimeError, TypeError):
        return False
    return all(r.dtype == torch.float32 and torch.equal(r.double(), expected) for r in results)


def content_scale(target: torch.Tensor) -> torch.Tensor:
    """The content normaliser: the target's mean square per image. -> [B]"""
    return at_least_fp32(target).pow(2).flatten(1).mean(1) + EPS


def style_scale(targets: torch.Tensor) -> torch.Tensor:
    """The style normaliser: each target Gram's mean square. [B, S, C, C] -> [B, S]"""
    return targets.pow(2).flatten(2).mean(2) + EPS


def content_loss(features: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared feature difference, relative to the target's mean square. -> [B]

    `scale` (content_scale(target)) is constant over a render: pass it in to
    skip recomputing it every step.
    """
    features, target = at_least_fp32(features), at_least_fp32(target)
    diff = (features - target).pow(2).flatten(1).mean(1)
    return diff / (content_scale(target) if scale is None else scale)


def style_loss(
    gram_matrix: torch.Tensor, targets: torch.Tensor, blend: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Blend-weighted relative Gram error.

    gram_matrix: [B, C, C]; targets: [B, S, C, C] (S styles per image, padded);
    blend: [B, S] weights (0 for padding); scale: style_scale(targets), if known. -> [B]
    """
    diff = (gram_matrix.unsqueeze(1) - targets).pow(2).flatten(2).mean(2)  # [B, S]
    return (blend * diff / (style_scale(targets) if scale is None else scale)).sum(1)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (0–1 scale). -> [B]"""
    dx = (image[..., :, 1:] - image[..., :, :-1]).pow(2).flatten(1).mean(1)
    dy = (image[..., 1:, :] - image[..., :-1, :]).pow(2).flatten(1).mean(1)
    return dx + dy


@dataclass(frozen=True)
class ObjectiveTargets:
    """Everything the objective compares against, for a batch of B images."""

    content: dict[str, torch.Tensor]  # layer -> [B, C, H, W]
    style: dict[str, torch.Tensor]  # layer -> [B, S, C, C]
    blend: torch.Tensor  # [B, S]
    content_layer_weights: dict[str, float]
    style_layer_weights: dict[str, float]
    content_weight: torch.Tensor  # [B]
    style_weight: torch.Tensor  # [B]
    tv_weight: torch.Tensor  # [B]
    use_tv: bool  # decided once, so the loop never asks the device
    # Normalisers of the fixed targets, computed once per stage (optional).
    content_scales: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> [B]
    style_scales: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> [B, S]

    def with_scales(self) -> ObjectiveTargets:
        return replace(
            self,
            content_scales={k: content_scale(v) for k, v in self.content.items()},
            style_scales={k: style_scale(v) for k, v in self.style.items()},
        )


def objective(
    image: torch.Tensor, features: dict[str, torch.Tensor], targets: ObjectiveTargets
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss per image [B] and its named parts ("content", "style.relu3_1", ...)."""
    parts: dict[str, torch.Tensor] = {}
    batch = image.shape[0]
    content = at_least_fp32(image.new_zeros(batch))
    content_norm = sum(targets.content_layer_weights.values()) or 1.0
    for layer, weight in targets.content_layer_weights.items():
        parts[f"content.{layer}"] = content_loss(
            features[layer], targets.content[layer], targets.content_scales.get(layer)
        )
        content = content + (weight / content_norm) * parts[f"content.{layer}"]
    style = at_least_fp32(image.new_zeros(batch))
    style_norm = sum(targets.style_layer_weights.values()) or 1.0
    for layer, weight in targets.style_layer_weights.items():
        parts[f"style.{layer}"] = style_loss(
            gram(features[layer]), targets.style[layer], targets.blend, targets.style_scales.get(layer)
        )
        style = style + (weight / style_norm) * parts[f"style.{layer}"]
    parts["content"] = targets.content_weight * content
    parts["style"] = targets.style_weight * style
    total = parts["content"] + parts["style"]
    if targets.use_tv:
        parts["tv"] = targets.tv_weight * tv_loss(at_least_fp32(image))
        total = total + parts["tv"]
    return total, parts
