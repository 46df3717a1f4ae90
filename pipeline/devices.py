"""Which devices to run workers on, found without touching CUDA in this process.

CUDA does not survive `fork`, and a parent that initialised it would hand every
worker a broken context; so detection asks a short-lived child interpreter,
which also honours CUDA_VISIBLE_DEVICES exactly as the workers will.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from .errors import PipelineError
from .run_values import parse_devices

_PROBE = """
import json, torch
count = torch.cuda.device_count() if torch.cuda.is_available() else 0
print(json.dumps([
    {"name": f"cuda:{i}", "label": torch.cuda.get_device_name(i),
     "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
    for i in range(count)
]))
"""


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cuda:0" or "cpu"
    label: str  # human name, e.g. "NVIDIA H100 80GB HBM3"
    memory_gb: float | None = None


def probe_cuda_devices(timeout: float = 120.0) -> list[DeviceInfo]:
    """CUDA devices visible to a fresh interpreter; [] when there are none."""
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout, check=False
        )
        entries = json.loads(completed.stdout.strip().splitlines()[-1]) if completed.returncode == 0 else []
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError, OSError):
        entries = []
    return [DeviceInfo(e["name"], e["label"], e["memory_gb"]) for e in entries]


def cpu_info() -> DeviceInfo:
    import os

    from nst_engine.cpu_model import cpu_model_name

    # The model a sidecar names as the device ("AMD EPYC 7B13"), not just "x86_64".
    return DeviceInfo("cpu", f"{cpu_model_name()}, {os.cpu_count()} cores")


def resolve_devices(requested: tuple[str, ...] | str | None, source: str = "--devices") -> tuple[str, ...]:
    """The worker devices: as requested, else every CUDA device, else one CPU worker.

    "cuda" alone means all visible CUDA devices. `source` names where the request
    came from in errors: the flag, or the manifest's `run.devices` with its line.
    """
    if requested is None:
        found = probe_cuda_devices()
        return tuple(d.name for d in found) or ("cpu",)
    try:
        devices = parse_devices(requested) if isinstance(requested, str) else tuple(requested)
    except ValueError as error:
        raise PipelineError(f"{source}: {error}") from None
    if "cuda" not in devices and not any(d.startswith("cuda:") for d in devices):
        return devices
    available = {d.name for d in probe_cuda_devices()}
    expanded: list[str] = []
    for device in devices:
        if device == "cuda":
            if not available:
                raise PipelineError(f"{source}: 'cuda' asked for, but no CUDA device is visible")
            expanded += sorted(available, key=lambda name: int(name.split(":")[1]))
        elif device.startswith("cuda:") and device not in available:
            seen = ", ".join(sorted(available)) or "none"
            raise PipelineError(f"{source}: {device} is not visible (visible CUDA devices: {seen})")
        else:
            expanded.append(device)
    return tuple(expanded)


def workers_for(devices: tuple[str, ...], jobs: int) -> tuple[str, ...]:
    """The workers to start: never more than jobs, since each costs seconds to
    start (torch, the weights) and, on the CPU, a share of the cores."""
    return devices[:max(1, jobs)]


def cpu_oversubscription(devices: tuple[str, ...]) -> str | None:
    """The warning for more CPU workers than cores, or None: the workers take
    turns on the cores, and the run is slower than with fewer of them."""
    cpu_workers, cores = devices.count("cpu"), os.cpu_count() or 1
    if cpu_workers <= cores:
        return None
    return (f"{cpu_workers} CPU workers on {cores} cores: they take turns on the cores, and each render is "
            f"slower; one worker per 1 or more cores (--devices cpu, or cpu*{cores}) is faster")


def emulated_bf16(jobs, devices) -> str | None:
    """The warning for jobs that ask for `precision: bf16` where CPU workers
    will render them on a CPU without native bf16 (no AVX512-BF16 or AMX):
    torch emulates it there, and a 256 px render ran over 8 minutes for 30
    iterations where fp32 takes about 15 s."""
    from nst_engine.cpu_model import cpu_has_native_bf16

    from .labels import count

    asking = [job for job in jobs if job.settings.precision == "bf16"]
    if not asking or "cpu" not in devices or cpu_has_native_bf16():
        return None
    return (f"{count(len(asking), 'job')} {'asks' if len(asking) == 1 else 'ask'} for precision: bf16, which this "
            "CPU only emulates (it has no AVX512-BF16 or AMX): many times slower than fp32 here; "
            "precision: auto renders fp32 on such a CPU and bf16 on a GPU")


def torchvision_download(jobs) -> str | None:
    """The warning for jobs with `weights: torchvision` where torch's cache on
    this machine lacks the file: each worker downloads it on its first job, and
    offline every such job failed, hours into the night, with the plan silent."""
    from nst_engine.checksums import torchvision_checkpoint_path

    from .labels import count

    asking = sum(1 for job in jobs if job.settings.weights == "torchvision")
    cached = torchvision_checkpoint_path()
    if not asking or cached.is_file():
        return None
    return (f"{count(asking, 'job')} {'uses' if asking == 1 else 'use'} weights: torchvision, which is not in "
            f"this machine's torch cache ({cached}): workers download it (about 550 MB) on their first job, "
            "and without a network those jobs fail; copy the file there, or use weights: caffe (bundled)")


def side_by_side(devices: tuple[str, ...]) -> int:
    """How many renders run at once at full speed: one per GPU, and the CPU
    workers together count once, since they share the cores."""
    gpus = {device for device in devices if device.startswith("cuda")}
    return max(1, len(gpus) + (1 if "cpu" in devices else 0))
