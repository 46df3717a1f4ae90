"""What every bench section shares: run sizes per mode, the Row, timing, inputs."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "manifests" / "images"
CONTENTS = tuple(IMAGES / "content" / f"{n}.jpg" for n in ("cincinnati_bridge", "chelsea", "machu_picchu", "neuschwanstein"))
STYLES = tuple(IMAGES / "style" / f"{n}.jpg" for n in ("starry_night", "night_cafe"))


@dataclass(frozen=True)
class Config:
    """How much work each section does. Iteration pairs are (N, M): per-iteration
    time is (T_N - T_M) / (N - M), so setup cancels out."""

    name: str
    repeats: int  # interleaved repeats for the in-process rows
    floor: tuple[tuple[int, int, int], ...]  # (side, N, M)
    peer_side: int
    peer_iterations: int
    peer_repeats: int
    gallery_side: int
    gallery_iterations: int
    gallery_repeats: int
    memory: tuple[tuple[int, int], ...]  # (side, iterations)
    gpu_side: int
    gpu_iterations: tuple[int, int]  # (N, M); images/hour is extrapolated to GPU_TARGET_ITERATIONS
    check_side: int  # (e) bf16 vs fp32 final loss, every content × the first style
    check_iterations: int
    sheet_jobs: int = 2000  # (g) jobs on the contact sheet
    sheet_results: int = 20  # (g) results recorded back to back


GPU_TARGET_ITERATIONS = 500

SMOKE = Config("smoke", 1, ((64, 3, 1),), 64, 2, 1, 64, 2, 1, ((64, 1), (96, 1)), 32, (3, 1), 32, 2,
               sheet_jobs=40, sheet_results=3)
QUICK = Config("quick", 4, ((128, 16, 4), (256, 8, 2)), 256, 30, 3, 128, 10, 2,
               ((256, 2), (512, 2)), 512, (100, 20), 128, 40)
FULL = Config("full", 5, ((128, 60, 10), (256, 30, 5), (512, 12, 3)), 256, 100, 2, 128, 30, 3,
              ((256, 3), (512, 3)), 512, (500, 50), 256, 100, sheet_jobs=5000, sheet_results=20)
MODES = {"smoke": SMOKE, "quick": QUICK, "full": FULL}


@dataclass(frozen=True)
class Row:
    key: str  # "a1", "b2", ...
    what: str
    value: float | None  # None: skipped
    shown: str  # the measured cell, e.g. "1.07 (0.101 s ÷ 0.094 s)"
    target: str = "—"
    met: bool | None = None  # None: for information, no target

    @property
    def met_text(self) -> str:
        if self.value is None:
            return "skipped" if self.met is None else "FAILED"
        return {True: "yes", False: "NO", None: "info"}[self.met]


def ratio_row(key: str, what: str, num: float, den: float, unit: str = "s",
              bound: tuple[str, float] | None = None, digits: int = 3) -> Row:
    """A row for num ÷ den, with both sides shown and an optional (op, limit) target."""
    value = num / den if den else math.inf
    return bounded_row(key, what, value, f"{value:.{digits}f} ({_fmt(num, unit)} ÷ {_fmt(den, unit)})", bound)


def median_row(key: str, what: str, ratios: list[float], bound: tuple[str, float] | None = None,
               digits: int = 3) -> Row:
    """A row for the median of per-pair ratios, each one shown after it."""
    value = median(ratios)
    return bounded_row(key, what, value, f"{value:.{digits}f} (each: {', '.join(f'{r:.{digits}f}' for r in ratios)})", bound)


def bounded_row(key: str, what: str, value: float, shown: str, bound: tuple[str, float] | None) -> Row:
    """A row showing `shown`, met when value satisfies the optional (op, limit) bound."""
    if bound is None:
        return Row(key, what, value, shown)
    op, limit = bound
    met = value <= limit if op == "<=" else value >= limit
    return Row(key, what, value, shown, f"{'≤' if op == '<=' else '≥'} {limit:.2f}", met)


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s" if value < 100 else f"{value:.0f} s"
    if unit == "loss":
        return f"{value:.4g}"
    return f"{value:.4g} {unit}".strip()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str = "cpu") -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def interleaved(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every fn once per repeat, in turn (A B A B ...); each returns its seconds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(fn())
    return times


def run_command(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of a whole command and its stdout; raises with stderr on failure."""
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def child_env() -> dict[str, str]:
    """Children (pastiche, plain scripts) use as many threads as this process."""
    import torch

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def python() -> str:
    return sys.executable


def square_crop(image: Image.Image) -> Image.Image:
    """The centre square of a real photo, so a side of 128 means 128×128 pixels."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def times_bf16(cfg: Config, device: str) -> bool:
    """Whether to render in bf16 here: on CUDA, or a CPU with AVX512-BF16 or AMX.
    Elsewhere torch emulates it, and a 30-iteration bf16 render at 256 px took
    over 8 minutes of CPU (AVX2 only), where fp32 takes seconds. The smoke
    run's renders are tiny, and it checks that the bf16 rows still work."""
    from nst_engine.cpu_model import cpu_has_native_bf16

    return cfg.name == "smoke" or device.startswith("cuda") or cpu_has_native_bf16()


NO_NATIVE_BF16 = "this CPU has no native bf16 (AVX2 only): skipped; `precision: auto` renders fp32 here"
