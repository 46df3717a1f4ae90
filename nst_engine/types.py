"""Plain data going in and out of the engine: requests, progress, checkpoints, results."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image

from .settings import RenderSettings


@dataclass(frozen=True)
class Checkpoint:
    """Where an interrupted render stood: stage index, iterations done in it, pixels,
    and the render seconds it took to get there, over every run so far (so a
    resumed render reports its whole time, not only the part after the resume)."""

    stage: int
    iteration: int
    pixels: torch.Tensor  # [1, 3, H, W], float32, on the CPU
    seconds: float = 0.0

    def to_state(self) -> dict[str, Any]:
        # Tensors and plain numbers only, so torch.load(weights_only=True) reads it back.
        return {"stage": self.stage, "iteration": self.iteration, "pixels": self.pixels, "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Checkpoint:
        # A checkpoint written before `seconds` existed says 0: its earlier time is unknown.
        return cls(int(state["stage"]), int(state["iteration"]), state["pixels"].float(),
                   float(state.get("seconds", 0.0)))

    def to_bytes(self) -> bytes:
        # Made in memory: torch.save writing to a file reports a failed write (a
        # full disk) as a RuntimeError from its zip writer, not as an OSError.
        buffer = io.BytesIO()
        torch.save(self.to_state(), buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        return cls.from_state(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))

    def is_finite(self) -> bool:
        """False for the pixels of a render that blew up: resumed, it would only fail again."""
        return bool(torch.isfinite(self.pixels).all())


@dataclass(frozen=True)
class RenderRequest:
    content: Image.Image
    styles: tuple[Image.Image, ...]
    settings: RenderSettings
    resume: Checkpoint | None = None
    # settings.init's image when it names a file, already loaded (a remote Dask
    # worker gets the bytes, not the file); None: the engine reads the path.
    init_image: Image.Image | None = None


@dataclass(frozen=True)
class StepInfo:
    """Progress between optimiser steps; `losses` holds one total per image."""

    stage: int  # 0-based index into the schedule
    stages: int
    side: int  # longest side at this stage, px
    iteration: int  # iterations done in this stage
    iterations: int  # iterations in this stage
    done: int  # iterations done over all stages
    total: int  # iterations over all stages
    losses: tuple[float, ...]


@dataclass(frozen=True)
class RenderStats:
    losses: dict[str, float]
    iterations: int
    seconds: float  # the whole render, the runs before a resume included
    peak_memory_mb: float
    device: str
    device_name: str
    precision: str
    schedule: tuple[int, ...]
    size: tuple[int, int]
    cache_hits: int
    cache_misses: int
    # torch's intra-op threads in this process: on a CPU, identical pixels need
    # the same CPU model (device_name) and the same thread count.
    torch_threads: int
    batch_size: int = 1
    resumed_from: int = 0  # iterations already done by a checkpoint we started from
    seconds_before_resume: float = 0.0  # the part of `seconds` spent reaching that checkpoint
    # The rate the optimiser used: the setting, or the optimiser's default where it is 0.
    learning_rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schedule"] = list(self.schedule)
        data["size"] = list(self.size)
        data["cache"] = {"hits": data.pop("cache_hits"), "misses": data.pop("cache_misses")}
        return data


@dataclass(frozen=True)
class RenderResult:
    image: Image.Image
    stats: RenderStats
