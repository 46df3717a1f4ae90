"""(d) Memory: peak memory one image costs, per size.

CPU: the peak RSS of a fresh process during one render minus its RSS just
before (weights loaded; bench.plain resets VmHWM there). The brief's cruder
measure is shown next to it: the process's peak RSS (VmHWM) minus that of a process
that only imports torch and loads the weights. It reads low for small images,
because weight loading's own transient peak (~0.4 GB) hides them. CUDA:
`torch.cuda.max_memory_allocated` in the same way. Activations and
the L-BFGS history are all allocated by the first iteration, so a couple of
iterations show the peak of a long render.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from nst_engine.images import fit_longest_side, load_image

from .common import CONTENTS, STYLES, Config, Row, child_env, python, run_command


def memory_rows(cfg: Config, device: str) -> list[Row]:
    key = "cuda_peak_mb" if device.startswith("cuda") else "rss_mb"
    base = [python(), "-m", "bench.plain", "--device", device]
    baseline = _report(base + ["--baseline"])
    rows = []
    work = Path(tempfile.mkdtemp(prefix="nst-bench-memory-"))
    try:
        for index, (side, iterations) in enumerate(cfg.memory, start=1):
            # A square image of exactly side × side pixels, so sizes compare across machines.
            content = fit_longest_side(load_image(CONTENTS[0]), side, upscale=True).resize((side, side))
            content.save(work / "content.png")
            report = _report(base + [
                "--memory", "--size", str(side), "--iterations", str(iterations),
                "--pair", str(work / "content.png"), str(STYLES[0]), str(work / "out.png"),
            ])
            per_image = report["render_extra_mb"]
            whole = report[key] - baseline[key]
            what = "CUDA max allocated" if key == "cuda_peak_mb" else "peak RSS"
            rows.append(Row(
                f"d{index}", f"memory {side}×{side} ({report['precision']}): {what} during one render − before it",
                per_image, f"{per_image:.0f} MB (whole process − weights-only process: "
                           f"{report[key]:.0f} − {baseline[key]:.0f} = {whole:.0f} MB)",
            ))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _report(args: list[str]) -> dict:
    _, stdout = run_command(args, child_env())
    return json.loads(stdout.strip().splitlines()[-1])
