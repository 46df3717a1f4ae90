"""The names and choices render settings take: VGG19's layers, the optimisers,
precisions and weight sources. Plain data, shared by the settings and their checks."""

from __future__ import annotations

# Layer names follow the paper: reluB_K is the K-th ReLU of block B.
VGG19_BLOCK_DEPTHS = (2, 2, 4, 4, 4)
RELU_LAYERS = tuple(
    f"relu{block}_{depth}"
    for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1)
    for depth in range(1, count + 1)
)
CONV_LAYERS = tuple(name.replace("relu", "conv") for name in RELU_LAYERS)
POOL_LAYERS = tuple(f"pool{block}" for block in range(1, 6))
FEATURE_LAYERS = frozenset(RELU_LAYERS + CONV_LAYERS + POOL_LAYERS)

INIT_MODES = ("content", "noise")
POOLINGS = ("max", "avg")
OPTIMIZERS = ("lbfgs", "adam")
# What `learning_rate: 0` means for each optimiser (pixels on the 0–1 scale).
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02}
PRECISIONS = ("auto", "fp32", "bf16")
BUILTIN_WEIGHTS = ("caffe", "torchvision")

# Above this longest side the default schedule renders coarse-to-fine, halving
# down to at most this size first (DESIGN: work per iteration grows 4x per 2x).
COARSE_TO_FINE_ABOVE = 512
SMALLEST_RENDER_SIDE = 32

LayerWeights = tuple[tuple[str, float], ...]


def network_order() -> list[str]:
    order: list[str] = []
    for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1):
        for depth in range(1, count + 1):
            order += [f"conv{block}_{depth}", f"relu{block}_{depth}"]
        order.append(f"pool{block}")
    return order
