"""What a plain script does with the engine, as a command the bench times whole.

    python -m bench.plain --pair CONTENT STYLE OUT [--pair ...] --size 128 --iterations 40
    python -m bench.plain --baseline          # import torch, load the weights, nothing else

Each pair gets a fresh `Engine` with no disk cache (weights loaded and style
targets computed every time), the way a naive loop over pairs would do it. It
prints one JSON line: per-render seconds, peak RSS, CUDA peak, precision.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.plain")
    parser.add_argument("--pair", nargs=3, action="append", default=[], metavar=("CONTENT", "STYLE", "OUT"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", action="store_true", help="only import torch and load the weights")
    parser.add_argument("--memory", action="store_true", help="measure the peak memory of each render")
    args = parser.parse_args(argv)

    import torch

    from nst_engine.engine import Engine
    from nst_engine.images import load_image
    from nst_engine.settings import RenderSettings

    settings = RenderSettings(size=args.size, iterations=args.iterations, precision=args.precision)
    report: dict = {"seconds": [], "precision": None}
    loading_peak = 0.0
    if args.baseline:
        engine = Engine(args.device, cache_dir=None)
        engine.network(settings.weights, engine.precision_for(settings))
        report["precision"] = engine.precision_for(settings)
    for content, style, out in args.pair:
        started = time.perf_counter()
        engine = Engine(args.device, cache_dir=None, progress_every=10**9)
        engine.network(settings.weights, engine.precision_for(settings))  # load here, so the memory window below is the render's own
        loading_peak = max(loading_peak, _status_mb("VmHWM"))  # before a reset below
        before = _memory_mark(args.device) if args.memory else math.nan
        result = engine.render(load_image(content), [load_image(style)], settings)
        report["render_extra_mb"] = _memory_peak(args.device) - before
        result.image.save(out)
        report["seconds"].append(time.perf_counter() - started)
        report["precision"] = result.stats.precision
    # VmHWM, not ru_maxrss: a child of a big process starts with its parent's ru_maxrss
    # (Linux carries the pre-exec hiwater over), which would hide small renders.
    report["rss_mb"] = max(loading_peak, _status_mb("VmHWM"))
    if args.device.startswith("cuda"):
        report["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(report))
    return 0


def _memory_mark(device: str) -> float:
    """MB in use now; also restarts the peak counter, so `_memory_peak` covers only what follows."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    try:  # hand freed heap pages (weight loading's temporaries) back, then reset VmHWM (Linux >= 4.0)
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return math.nan
    return _status_mb("VmRSS")


def _memory_peak(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return math.nan


if __name__ == "__main__":
    sys.exit(main())
