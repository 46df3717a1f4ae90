"""The objective's pure functions against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from nst_engine import losses
from nst_engine.images import to_tensor
from nst_engine.losses import (
    ObjectiveTargets,
    content_loss,
    content_scale,
    gram,
    objective,
    style_loss,
    style_scale,
    tv_loss,
)
from nst_engine.vgg import build_network

# Two channels on a 2×2 grid: c0 = [1, 2, 3, 4], c1 = [0, 1, -1, 2] (row-major).
FEATURES = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]]])


def test_gram_of_a_known_tensor_is_the_channel_dot_products_over_hw():
    # c0·c0 = 1+4+9+16 = 30, c0·c1 = 0+2-3+8 = 7, c1·c1 = 0+1+1+4 = 6; H·W = 4.
    expected = torch.tensor([[[7.5, 1.75], [1.75, 1.5]]])
    assert torch.equal(gram(FEATURES), expected)


def test_gram_keeps_low_precision_features_in_fp32_and_fp64_in_fp64():
    assert gram(FEATURES.bfloat16()).dtype == torch.float32
    assert gram(FEATURES.half()).dtype == torch.float32
    assert gram(FEATURES.double()).dtype == torch.float64


def test_gram_of_a_tiled_feature_map_is_unchanged():
    # Tiling repeats every position 4 times: the sum grows 4x, H·W grows 4x.
    tile = torch.rand(1, 5, 6, 7, generator=torch.Generator().manual_seed(0))
    tiled = tile.repeat(1, 1, 2, 2)
    assert torch.allclose(gram(tiled), gram(tile), rtol=1e-6)


def test_gram_gradient_is_the_plain_formulas_gradient():
    # gram() differentiates through the symmetry, (dG + dGᵀ) F / n, in one matmul;
    # it must agree with autograd through bmm(F, Fᵀ) / n, and with finite differences.
    g = torch.Generator().manual_seed(0)
    features = torch.rand(2, 4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 4, 4, generator=g, dtype=torch.float64)  # not symmetric on purpose
    (ours,) = torch.autograd.grad((gram(features) * weights).sum(), features)
    flat = features.reshape(2, 4, 15)
    plain = torch.bmm(flat, flat.transpose(1, 2)) / 15
    (expected,) = torch.autograd.grad((plain * weights).sum(), features)
    assert torch.allclose(ours, expected, rtol=1e-12, atol=1e-14)
    assert torch.autograd.gradcheck(gram, (features[:1, :2, :2, :2].detach().requires_grad_(),))


def test_gram_of_channels_last_features_equals_nchw_and_copies_nothing():
    # The bf16 network runs channels-last; its Gram reads the same numbers as a
    # [B, H·W, C] view, with the same value and the same gradient as NCHW.
    g = torch.Generator().manual_seed(1)
    nchw = torch.rand(2, 6, 5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    nhwc = nchw.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    weights = torch.rand(2, 6, 6, generator=g, dtype=torch.float64)
    (grad_nchw,) = torch.autograd.grad((gram(nchw) * weights).sum(), nchw)
    (grad_nhwc,) = torch.autograd.grad((gram(nhwc) * weights).sum(), nhwc)
    assert torch.allclose(gram(nhwc), gram(nchw), rtol=1e-12)
    assert torch.allclose(grad_nhwc, grad_nchw, rtol=1e-12, atol=1e-15)
    assert grad_nhwc.is_contiguous(memory_format=torch.channels_last)  # no layout round trip
    assert torch.autograd.gradcheck(gram, (nhwc[:1, :3, :2, :3].detach().requires_grad_(),))


def test_bf16_gram_is_fp32_and_its_gradient_comes_back_in_bf16():
    # The Gram is an fp32 matrix of the bf16 values; the gradient returns in the
    # network's dtype, equal to the fp32 gradient up to bf16 rounding.
    g = torch.Generator().manual_seed(2)
    features = torch.rand(1, 8, 6, 6, generator=g).bfloat16()
    wide = features.float().requires_grad_(True)
    narrow = features.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    weights = torch.rand(1, 8, 8, generator=g)
    assert torch.allclose(gram(narrow), gram(wide), rtol=1e-6)
    (expected,) = torch.autograd.grad((gram(wide) * weights).sum(), wide)
    (ours,) = torch.autograd.grad((gram(narrow) * weights).sum(), narrow)
    assert ours.dtype == torch.bfloat16
    assert torch.allclose(ours.float(), expected, rtol=2**-7, atol=1e-6)


def test_content_loss_is_the_mse_relative_to_the_targets_mean_square():
    features = torch.tensor([[[[1.0, 3.0]]], [[[0.0, 0.0]]]])
    target = torch.tensor([[[[2.0, 2.0]]], [[[1.0, 3.0]]]])
    # Image 0: mse (1+1)/2 = 1 over mean square (4+4)/2 = 4; image 1: (1+9)/2 = 5 over 5.
    assert torch.allclose(content_loss(features, target), torch.tensor([0.25, 1.0]))


def test_content_loss_is_zero_for_the_target_itself():
    target = torch.rand(2, 3, 4, 4)
    assert torch.equal(content_loss(target, target), torch.zeros(2))


def test_style_loss_blends_styles_and_ignores_weight_zero_padding():
    current = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # [B=1, C, C]
    first = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # mse 1/4, mean square 5/4 -> 0.2
    second = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # mse 2/4, mean square 1 -> 0.5
    targets = torch.stack([first, second]).unsqueeze(0)  # [1, S=2, C, C]
    blend = torch.tensor([[0.25, 0.75]])
    assert style_loss(current, targets, blend).item() == pytest.approx(0.25 * 0.2 + 0.75 * 0.5)

    padded = torch.cat([targets, torch.zeros(1, 1, 2, 2)], dim=1)
    blend_padded = torch.tensor([[0.25, 0.75, 0.0]])
    assert style_loss(current, padded, blend_padded).item() == pytest.approx(0.425)


def test_style_loss_is_per_image():
    current = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 1.0]]])
    targets = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]).expand(2, 1, 2, 2)
    values = style_loss(current, targets, torch.ones(2, 1))
    assert values.tolist() == pytest.approx([0.2, 0.0])


def test_tv_loss_of_a_two_by_two_image_by_hand():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # Horizontal: (1-0)², (4-2)² -> mean 2.5; vertical: (2-0)², (4-1)² -> mean 6.5.
    assert tv_loss(image).tolist() == [9.0]
    assert tv_loss(torch.full((2, 3, 4, 4), 0.7)).tolist() == [0.0, 0.0]


def _targets(batch: int, *, tv: float, weights=(1.0, 5.0)) -> tuple[dict, ObjectiveTargets]:
    g = torch.Generator().manual_seed(batch)
    features = {
        "relu1_1": torch.rand(batch, 3, 6, 6, generator=g),
        "relu2_1": torch.rand(batch, 4, 3, 3, generator=g),
        "relu4_2": torch.rand(batch, 4, 2, 2, generator=g),
    }
    style = {
        name: torch.stack([gram(torch.rand(1, f.shape[1], 5, 5, generator=g))[0] for _ in range(batch)])
        .unsqueeze(1)
        for name, f in features.items()
        if name != "relu4_2"
    }
    targets = ObjectiveTargets(
        content={"relu4_2": torch.rand(batch, 4, 2, 2, generator=g)},
        style=style,
        blend=torch.ones(batch, 1),
        content_layer_weights={"relu4_2": 1.0},
        style_layer_weights={"relu1_1": 1.0, "relu2_1": 3.0},
        content_weight=torch.full((batch,), weights[0]),
        style_weight=torch.full((batch,), weights[1]),
        tv_weight=torch.full((batch,), tv),
        use_tv=tv > 0,
    )
    return features, targets


def test_objective_names_its_parts_and_adds_tv_only_when_asked():
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    features, targets = _targets(1, tv=0.0)
    total, parts = objective(image, features, targets)
    assert set(parts) == {"content.relu4_2", "style.relu1_1", "style.relu2_1", "content", "style"}

    features, targets = _targets(1, tv=2.0, weights=(0.5, 3.0))
    total, parts = objective(image, features, targets)
    assert set(parts) == {"content.relu4_2", "style.relu1_1", "style.relu2_1", "content", "style", "tv"}
    # Layer weights 1 and 3 are normalised by their sum; each term by its weight.
    style = (parts["style.relu1_1"] + 3 * parts["style.relu2_1"]) / 4
    expected = 0.5 * parts["content.relu4_2"] + 3.0 * style + 2.0 * tv_loss(image)
    assert torch.allclose(total, expected)
    assert torch.allclose(parts["tv"], 2.0 * tv_loss(image))


def test_objective_of_a_batch_equals_each_image_alone():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    features, targets = _targets(2, tv=1.0)
    targets = ObjectiveTargets(  # different weights per image
        **{**targets.__dict__, "style_weight": torch.tensor([5.0, 0.1]), "tv_weight": torch.tensor([1.0, 0.0])}
    )
    total, parts = objective(images, features, targets)
    for i in range(2):
        one = ObjectiveTargets(
            content={k: v[i : i + 1] for k, v in targets.content.items()},
            style={k: v[i : i + 1] for k, v in targets.style.items()},
            blend=targets.blend[i : i + 1],
            content_layer_weights=targets.content_layer_weights,
            style_layer_weights=targets.style_layer_weights,
            content_weight=targets.content_weight[i : i + 1],
            style_weight=targets.style_weight[i : i + 1],
            tv_weight=targets.tv_weight[i : i + 1],
            use_tv=True,
        )
        alone, alone_parts = objective(images[i : i + 1], {k: v[i : i + 1] for k, v in features.items()}, one)
        assert torch.allclose(total[i], alone[0], rtol=1e-6)
        for name in parts:
            assert torch.allclose(parts[name][i], alone_parts[name][0], rtol=1e-6), name


def test_style_of_a_texture_at_twice_the_size_matches_through_vgg(caffe_weights, starry, cafe):
    """Through the real network only the borders differ, so the relative Gram error
    stays small; an un-normalised Gram would be 4× off (relative error 9), and
    another painting is far off too."""
    net = build_network(caffe_weights, torch.device("cpu"))
    layers = ("relu1_1", "relu2_1", "relu3_1")
    crop = to_tensor(starry.crop((0, 0, 48, 48)))
    # Mirrored, so the tiled texture has no seams.
    tile = torch.cat([crop, crop.flip(-1)], -1)
    tile = torch.cat([tile, tile.flip(-2)], -2)  # 96×96
    other = to_tensor(cafe.crop((0, 0, 96, 96)))
    with torch.no_grad():
        small, large, different = (
            net(caffe_weights.preprocess(x), set(layers)) for x in (tile, tile.repeat(1, 1, 2, 2), other)
        )
    for name in layers:
        target = gram(small[name]).unsqueeze(1)
        assert style_loss(gram(large[name]), target, torch.ones(1, 1)).item() < 0.1, name
        assert style_loss(gram(different[name]), target, torch.ones(1, 1)).item() > 0.15, name


def test_precomputed_normalisers_give_exactly_the_recomputed_losses():
    # The engine computes each fixed target's mean square once per stage
    # (ObjectiveTargets.with_scales) instead of every step; the losses must not move.
    g = torch.Generator().manual_seed(1)
    features = torch.rand(2, 3, 4, 4, generator=g)
    content_target = torch.rand(2, 3, 4, 4, generator=g)
    grams = torch.rand(2, 3, 3, generator=g)
    style_targets = torch.rand(2, 2, 3, 3, generator=g)
    blend = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    assert torch.equal(
        content_loss(features, content_target),
        content_loss(features, content_target, content_scale(content_target)),
    )
    assert torch.equal(
        style_loss(grams, style_targets, blend),
        style_loss(grams, style_targets, blend, style_scale(style_targets)),
    )


def test_the_direct_fp32_result_bf16_matmul_is_used_only_where_it_works():
    # CUDA multiplies bf16 straight into an fp32 Gram; this CPU build cannot, so
    # the probe must say no here and gram() widens instead (tested above).
    assert losses._bf16_matmul_with_fp32_result(torch.device("cpu")) is False


def test_the_direct_path_gives_the_widened_grams_in_both_layouts(monkeypatch):
    # The CUDA branch, run on the CPU with bmm's out_dtype emulated (widen, then
    # multiply): its operand order and scaling must give the same Grams.
    real_bmm = torch.bmm

    def bmm(a, b, *, out_dtype=None):
        return real_bmm(a.float(), b.float()) if out_dtype is not None else real_bmm(a, b)

    features = torch.rand(2, 5, 4, 6, generator=torch.Generator().manual_seed(3)).bfloat16()
    nhwc = features.contiguous(memory_format=torch.channels_last)
    widened = [gram(features), gram(nhwc)]
    monkeypatch.setattr(losses, "_bf16_matmul_with_fp32_result", lambda device: True)
    monkeypatch.setattr(torch, "bmm", bmm)
    direct = [gram(features), gram(nhwc)]
    for got, want in zip(direct, widened):
        assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-6)
