"""(f) GPU throughput: images/hour at 512 px × 500 iterations, batched or not, bf16 or fp32.

Only on a CUDA device. Four contents of one size render either one at a time
(`render`) or as one batch of four (`render_batch`, each image with its own
L-BFGS state). Seconds for 500 iterations are extrapolated linearly from a run
of N and a run of M iterations, T(500) = T(M) + (500 - M)·(T(N) - T(M))/(N - M)
(exact when N = 500), so a quick run stays quick.
"""

from __future__ import annotations

from nst_engine.engine import Engine
from nst_engine.images import fit_longest_side, load_image
from nst_engine.settings import RenderSettings
from nst_engine.types import RenderRequest

from .common import CONTENTS, GPU_TARGET_ITERATIONS, STYLES, Config, Row, median, ratio_row, timed

BATCH = 4


def gpu_rows(cfg: Config, device: str) -> list[Row]:
    if not device.startswith("cuda"):
        return [Row("f", "GPU images/hour at 512 px × 500 it, batch 4 vs 1, bf16 vs fp32", None,
                    "no CUDA device: skipped")]
    rates = {
        (precision, batch): images_per_hour(cfg, device, precision, batch)
        for precision in ("bf16", "fp32") for batch in (1, BATCH)
    }
    what = f"GPU {cfg.gpu_side}px × {GPU_TARGET_ITERATIONS} it"
    rows = [
        Row(f"f{i}", f"{what}, {p}, batch {b}: images/hour", rate, f"{rate:.0f} images/hour")
        for i, ((p, b), rate) in enumerate(rates.items(), start=1)
    ]
    rows += [
        ratio_row("f5", f"{what}: images/hour, batch {BATCH} ÷ batch 1 (bf16)",
                  rates["bf16", BATCH], rates["bf16", 1], unit="/h"),
        ratio_row("f6", f"{what}: images/hour, bf16 ÷ fp32 (batch 1)",
                  rates["bf16", 1], rates["fp32", 1], unit="/h"),
    ]
    return rows


def images_per_hour(cfg: Config, device: str, precision: str, batch: int) -> float:
    side = cfg.gpu_side
    n, m = cfg.gpu_iterations
    engine = Engine(device, cache_dir=None, progress_every=10**9)
    # render_batch needs contents of one size: every content resized to the first one's size.
    first = fit_longest_side(load_image(CONTENTS[0]), side, upscale=True)
    contents = [first] + [load_image(p).resize(first.size) for p in CONTENTS[1:]]
    styles = [load_image(STYLES[i % len(STYLES)]) for i in range(BATCH)]

    def run(iterations: int) -> float:
        settings = RenderSettings(size=side, iterations=iterations, precision=precision)
        if batch == 1:
            return sum(timed(lambda i=i: engine.render(contents[i], [styles[i]], settings), device)
                       for i in range(BATCH))
        requests = [RenderRequest(contents[i], (styles[i],), settings) for i in range(BATCH)]
        return timed(lambda: engine.render_batch(requests), device)

    run(2)  # warm-up: weights, style targets, kernels
    times = {"n": [], "m": []}
    for _ in range(max(1, cfg.repeats // 2)):
        times["n"].append(run(n))
        times["m"].append(run(m))
    t_n, t_m = median(times["n"]), median(times["m"])
    seconds = t_m + (GPU_TARGET_ITERATIONS - m) * (t_n - t_m) / (n - m)
    return 3600 * BATCH / seconds
