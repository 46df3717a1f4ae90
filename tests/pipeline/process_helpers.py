"""Helpers for the scheduler tests that start real processes: `nst render` as a
subprocess (as cron would run it), its log, and what it leaves in the folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

# "worker 1 on cpu (x86_64) is ready, pid 4242" / "worker 1 starts chelsea--starry-ab12"
READY_LINE = re.compile(r"worker (\d+) on \S+ .*pid (\d+)")
STARTS_LINE = re.compile(r"worker (\d+) starts (\S+)")


def write_manifest(folder: Path, contents: list[str], styles: list[str], *, settings: dict,
                   run: dict | None = None, name: str = "gallery.yaml", output: str = "out",
                   extra_jobs: list[dict] | None = None) -> Path:
    """A manifest over the sample images copied by the `gallery_dir` fixture."""
    images = folder / "images"
    entry = {"contents": [str(images / "content" / f"{c}.jpg") for c in contents],
             "styles": [str(images / "style" / f"{s}.jpg") for s in styles]}
    data: dict[str, Any] = {"output": output, "settings": settings, "jobs": [entry, *(extra_jobs or [])]}
    if run:
        data["run"] = run
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def command(manifest: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "render", str(manifest), *args]


def start(manifest: Path, *args: str, log_name: str = "run", preexec_fn=None, **env: str) -> subprocess.Popen:
    """Start `nst render` without a terminal; its stdout+stderr go to a file beside the manifest."""
    log = open(manifest.parent / f"{log_name}.txt", "w", encoding="utf-8")  # noqa: SIM115
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **env}
    process = subprocess.Popen(command(manifest, *args), cwd=manifest.parent, env=full_env, preexec_fn=preexec_fn,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child has its own copy
    return process


def run(manifest: Path, *args: str, timeout: float = 150, log_name: str = "run", preexec_fn=None, **env: str):
    """Run `nst render` to the end: (exit code, everything it printed)."""
    process = start(manifest, *args, log_name=log_name, preexec_fn=preexec_fn, **env)
    printed = manifest.parent / f"{log_name}.txt"
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        # What it printed tells a slow machine from a hung run (the temp folder is gone by then).
        raise AssertionError(f"nst render ran past {timeout} s; it printed:\n"
                             + printed.read_text(encoding="utf-8")[-6000:]) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, printed.read_text(encoding="utf-8")


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "condition",
             process: subprocess.Popen | None = None) -> Any:
    """Poll until `condition()` is truthy; fail early if `process` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended (exit {process.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def log_text(output_dir: Path) -> str:
    try:
        return (output_dir / "nst.log").read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def worker_pids(output_dir: Path) -> dict[int, int]:
    """Slot -> pid of the latest worker the log announced for that slot."""
    return {int(slot): int(pid) for slot, pid in READY_LINE.findall(log_text(output_dir))}


def results(output_dir: Path) -> list[dict]:
    path = output_dir / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def done_counts(output_dir: Path) -> Counter:
    return Counter(r["job_id"] for r in results(output_dir) if r["status"] == "done")


def sidecars(output_dir: Path) -> dict[str, dict]:
    """job id -> sidecar, for every finished output."""
    found = {}
    for path in output_dir.glob("*.json"):
        if path.name != "summary.json":
            data = json.loads(path.read_text())
            found[data["job_id"]] = data
    return found


def output_pngs(output_dir: Path) -> list[Path]:
    return sorted(p for p in output_dir.glob("*.png"))


def decodes(path: Path) -> bool:
    with Image.open(path) as image:
        image.load()
    return True


def leftovers(output_dir: Path) -> list[Path]:
    """Temp files a crash or a kill could have left behind."""
    return [p for p in output_dir.rglob("*") if p.name.endswith(".tmp")]
