"""(c) Gallery: the whole pipeline ÷ a plain loop over pairs, on 4 contents × 2 styles.

The pipeline (`pipeline.run.execute` on a generated manifest) starts a worker
process, builds one Engine, loads the weights once and reuses each style's Gram
matrices (memory -> disk cache), and writes images, sidecars, results.jsonl and
the contact sheet. The plain loop (`python -m bench.plain`, one process) builds
a fresh Engine per pair with no disk cache, as a naive script would: weights and
style targets every time. Both are whole runs that start one Python process with
torch; each repeat gets a fresh cache folder and fresh output folders.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .common import CONTENTS, STYLES, Config, Row, child_env, median, python, ratio_row, run_command


def gallery_rows(cfg: Config, device: str) -> list[Row]:
    times: dict[str, list[float]] = {"pipeline": [], "plain": []}
    hits = misses = 0
    for _ in range(cfg.gallery_repeats):  # interleaved: pipeline, plain, pipeline, plain ...
        work = Path(tempfile.mkdtemp(prefix="nst-bench-gallery-"))
        try:
            seconds, hits, misses = _pipeline(work, cfg, device)
            times["pipeline"].append(seconds)
            times["plain"].append(_plain(work, cfg, device))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    jobs = len(CONTENTS) * len(STYLES)
    expected = jobs - len(STYLES)  # each style computed once, then reused
    what = f"{len(CONTENTS)}×{len(STYLES)} gallery, {cfg.gallery_side}px, {cfg.gallery_iterations} it"
    cache = Row(
        "c2", f"{what}: style-target cache hits in the pipeline run",
        float(hits), f"{hits} hits, {misses} misses of {hits + misses} lookups",
        f"= {expected} (jobs − styles)", hits == expected,
    )
    return [
        ratio_row("c1", f"{what}: pipeline wall ÷ plain per-pair engine loop wall",
                  median(times["pipeline"]), median(times["plain"]), bound=("<=", 1.00)),
        cache,
    ]


def _pipeline(work: Path, cfg: Config, device: str) -> tuple[float, int, int]:
    from pipeline.manifest import load_manifest
    from pipeline.run import RenderOptions, execute

    manifest = work / "gallery.yaml"
    contents = ", ".join(json.dumps(str(p)) for p in CONTENTS)
    styles = ", ".join(json.dumps(str(p)) for p in STYLES)
    manifest.write_text(
        f"output: {json.dumps(str(work / 'pipeline-out'))}\n"
        f"settings: {{size: {cfg.gallery_side}, iterations: {cfg.gallery_iterations}}}\n"
        f"jobs:\n  - contents: [{contents}]\n    styles: [{styles}]\n",
        encoding="utf-8",
    )
    previous = os.environ.get("NST_CACHE_DIR")
    os.environ["NST_CACHE_DIR"] = str(work / "cache")  # the spawned worker inherits it
    try:
        started = time.perf_counter()
        code = execute(load_manifest(manifest), RenderOptions(devices=(device,), live=False, quiet=True))
        seconds = time.perf_counter() - started
    finally:
        if previous is None:
            os.environ.pop("NST_CACHE_DIR", None)
        else:
            os.environ["NST_CACHE_DIR"] = previous
    if code != 0:
        raise RuntimeError(f"the pipeline exited with {code}; see {work / 'pipeline-out' / 'nst.log'}")
    records = [json.loads(line) for line in (work / "pipeline-out" / "results.jsonl").read_text().splitlines()]
    caches = [r.get("stats", {}).get("cache", {}) for r in records]  # one record per job (no batching on CPU)
    hits = sum(c.get("hits", 0) for c in caches)
    misses = sum(c.get("misses", 0) for c in caches)
    return seconds, hits, misses


def _plain(work: Path, cfg: Config, device: str) -> float:
    out = work / "plain-out"
    out.mkdir()
    pairs = []
    for content in CONTENTS:
        for style in STYLES:
            pairs += ["--pair", str(content), str(style), str(out / f"{content.stem}__{style.stem}.png")]
    args = [python(), "-m", "bench.plain", "--device", device, "--size", str(cfg.gallery_side),
            "--iterations", str(cfg.gallery_iterations), *pairs]
    return run_command(args, child_env())[0]
