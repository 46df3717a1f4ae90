"""(e) bf16 check: the engine's bf16 final loss ÷ its fp32 final loss, same iterations.

One pair is a fragile check: L-BFGS trajectories drift apart from the first
rounding difference, so one image's ratio moves by about ±1% between settings.
Every content photo is rendered with the first style in both precisions, and
the target is on the worst pair. Both results are scored by the engine's own
objective in fp32 on the CPU (objective.common_loss).
"""

from __future__ import annotations

from nst_engine.engine import Engine
from nst_engine.images import fit_longest_side, load_image
from nst_engine.settings import RenderSettings

from .common import CONTENTS, NO_NATIVE_BF16, STYLES, Config, Row, bounded_row, median, times_bf16
from .objective import common_loss


def precision_rows(cfg: Config, device: str) -> list[Row]:
    if not times_bf16(cfg, device):
        return [Row("e1", "bf16 check: worst bf16 ÷ fp32 final loss (fp32 objective)", None, NO_NATIVE_BF16)]
    engine = Engine(device, cache_dir=None, progress_every=10**9)
    side, iterations = cfg.check_side, cfg.check_iterations
    style = fit_longest_side(load_image(STYLES[0]), side)
    ratios = []
    for path in CONTENTS:
        content = fit_longest_side(load_image(path), side, upscale=True)
        loss = {}
        for precision in ("bf16", "fp32"):
            settings = RenderSettings(size=side, iterations=iterations, seed=0, precision=precision)
            loss[precision] = common_loss(content, style, engine.render(content, [style], settings).image, settings)
        ratios.append(loss["bf16"] / loss["fp32"])
    worst = max(ratios)
    listed = ", ".join(f"{r:.4f}" for r in ratios)
    return [
        bounded_row("e1", f"bf16 check, {len(ratios)} photos × 1 style, {side}px, {iterations} it: worst bf16 ÷ "
                          "fp32 final loss (fp32 objective)",
                    worst, f"{worst:.4f} (median {median(ratios):.4f}; each: {listed})", ("<=", 1.02)),
    ]
