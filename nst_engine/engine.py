"""Engine: render(content, styles, settings) -> image + stats, on one device.

prepare (colour handling, schedule) -> targets (content features, cached style
Grams) -> optimise each stage of the coarse-to-fine schedule -> finish (checks,
colour recombination, stats). Several requests of the same shape render as one
batch with `render_batch`; each image keeps its own optimiser state.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from . import images
from .cache_location import default_cache_dir
from .cpu_model import cpu_has_native_bf16, cpu_model_name
from .errors import EngineError, RenderDivergedError
from .optimise import StageContext, evaluate, run_stage
from .setting_values import BUILTIN_WEIGHTS
from .settings import RenderSettings, batch_signature
from .stage_targets import build_targets, initial_pixels
from .targets import StyleTargetCache
from .types import Checkpoint, RenderRequest, RenderResult, RenderStats, StepInfo
from .vgg import LoadedWeights, VGG19Features, build_network, load_weights

# A result whose pixels vary less than this (std on the 0–1 scale, in every
# channel) is blank. Per channel: a flat colour such as solid blue has a large
# std across its three channels but is just as blank.
UNIFORM_STD = 0.5 / 255
_DEFAULT = "default"


@dataclass(frozen=True)
class _Network:
    module: VGG19Features
    weights: LoadedWeights


@dataclass(frozen=True)
class _Prepared:
    content: Image.Image  # what the network sees (luminance only with preserve_color)
    styles: tuple[Image.Image, ...]
    color_source: Image.Image | None  # original content, for preserve_color


class Engine:
    """One device, one network per weight source, one style-target cache."""

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        cache_dir: Path | str | None = _DEFAULT,
        progress_every: int = 10,
        checkpoint_every: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype  # float64 only for the batched-equivalence tests
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        directory = default_cache_dir() if cache_dir == _DEFAULT else cache_dir
        self.cache = StyleTargetCache(Path(directory) if directory else None)
        self.progress_every = max(1, progress_every)
        self.checkpoint_every = checkpoint_every
        self._loaded: dict[str | tuple[str, int, int], LoadedWeights] = {}
        self._networks: dict[tuple[object, str], _Network] = {}

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return cpu_model_name()

    def precision_for(self, settings: RenderSettings) -> str:
        if self.dtype != torch.float32:
            return "fp64" if self.dtype == torch.float64 else str(self.dtype)  # tests: no autocast
        return settings.resolved_precision(self.device.type, cpu_has_native_bf16())

    def network(self, weights: str, precision: str = "fp32") -> _Network:
        """The network for a weight source, with bf16 weights when precision is bf16.

        A bf16 copy of the weights gives the same numbers as autocast (which casts
        them to bf16 anyway) without re-casting ~12M weights on every forward:
        about 3% of an iteration at 128 px on the development CPU.
        The bf16 network also runs channels-last (NHWC): on that CPU the same bare
        forward + backward in NCHW takes 1.16x (256 px) to 1.23x (512 px) as long
        (bench row a5; max-pooling gains most),
        and NHWC is the layout cuDNN's bf16 tensor-core kernels want. fp32 stays
        NCHW, where channels-last was 12% slower at 128 px (docs/benchmarks.md).
        """
        source = _weights_version(weights)
        key = (source, precision)
        if key not in self._networks:
            if source not in self._loaded:
                self._loaded[source] = load_weights(weights)
            loaded = self._loaded[source]
            dtype = torch.bfloat16 if precision == "bf16" else self.dtype
            module = build_network(loaded, self.device).to(dtype)
            if precision == "bf16":
                module = module.to(memory_format=torch.channels_last)
            self._networks[key] = _Network(module, loaded)
        return self._networks[key]

    # -- public API ------------------------------------------------------------
    def render(
        self,
        content: Image.Image,
        styles: Sequence[Image.Image],
        settings: RenderSettings,
        *,
        resume: Checkpoint | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_checkpoint: Callable[[int, Checkpoint], None] | None = None,
    ) -> RenderResult:
        request = RenderRequest(content, tuple(styles), settings, resume)
        (outcome,) = self.render_batch(
            [request], on_step=on_step, should_cancel=should_cancel, on_checkpoint=on_checkpoint
        )
        if isinstance(outcome, EngineError):
            raise outcome
        return outcome

    def render_batch(
        self,
        requests: Sequence[RenderRequest],
        *,
        on_step: Callable[[StepInfo], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_checkpoint: Callable[[int, Checkpoint], None] | None = None,
    ) -> list[RenderResult | EngineError]:
        """Render requests of one shape together; a per-image failure is returned, not raised."""
        started = time.perf_counter()
        first = requests[0].settings
        _check_batchable(requests)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        prepared = [self._prepare(r) for r in requests]
        stages = _batch_schedule(requests, prepared)
        hits, misses = self.cache.hits, self.cache.misses
        precision = self.precision_for(first)
        net = self.network(first.weights, precision)
        diverged = [False] * len(requests)
        before = _seconds_before(requests[0])  # a resumed render runs alone (_check_batchable)
        hooks = {"on_step": on_step, "should_cancel": should_cancel, "on_checkpoint": on_checkpoint,
                 "render_seconds": lambda: before + time.perf_counter() - started}
        ctx, x = self._run_stages(requests, prepared, stages, net, precision, diverged, hooks)
        with torch.no_grad():
            losses, parts = evaluate(ctx, x)
        return self._finish(
            requests, prepared, x, losses, parts, diverged, stages, precision,
            time.perf_counter() - started, self.cache.hits - hits, self.cache.misses - misses,
        )

    # -- stages ------------------------------------------------------------------
    def _run_stages(self, requests, prepared, stages, net, precision, diverged, hooks):
        """Coarse to fine: each stage starts from the last one's pixels (or the checkpoint)."""
        first = requests[0].settings
        resume = requests[0].resume
        if resume is not None and not 0 <= resume.stage < len(stages):
            raise EngineError("the checkpoint belongs to another schedule; delete it to start over")
        x: torch.Tensor | None = None
        ctx: StageContext | None = None
        for stage, (side, size) in enumerate(stages):
            if resume is not None and stage < resume.stage:
                continue
            targets, content_t = build_targets(self, net, requests, prepared, side, size, precision)
            x = initial_pixels(self, requests, prepared, stage, size, content_t, x)
            start = resume.iteration if resume is not None and stage == resume.stage else 0
            ctx = StageContext(
                network=net.module, preprocess=net.weights.preprocess,
                layers=frozenset(targets.content) | frozenset(targets.style),
                pooling=first.pooling, bf16=precision == "bf16", targets=targets,
                optimizer=first.optimizer, lbfgs_history=first.lbfgs_history,
                learning_rate=first.resolved_learning_rate(), stage=stage, stages=len(stages), side=side,
                iterations=first.iterations, done_before=stage * first.iterations,
                total=first.iterations * len(stages), progress_every=self.progress_every,
                checkpoint_every=self.checkpoint_every, diverged=diverged, **hooks,
            )
            x = run_stage(ctx, x, start)
        return ctx, x

    def _prepare(self, request: RenderRequest) -> _Prepared:
        content = images.load_image(request.content)
        styles = tuple(images.load_image(s) for s in request.styles)
        if not styles:
            raise EngineError("at least one style image is needed")
        request.settings.blend(len(styles))  # validates the blend length early
        if not request.settings.preserve_color:
            return _Prepared(content, styles, None)
        # Gatys et al. 2016, luminance-only transfer: render on luminance with the
        # style's luminance matched to the content's, then put the colour back.
        content_luma = images.luminance(content)
        styles_luma = tuple(images.match_luminance(images.luminance(s), content_luma) for s in styles)
        return _Prepared(content_luma, styles_luma, content)

    def _finish(self, requests, prepared, x, losses, parts, diverged, stages, precision,
                seconds, hits, misses) -> list[RenderResult | EngineError]:
        pixels = x.detach().float().cpu()
        loss_values = losses.detach().cpu().tolist()
        part_values = {name: value.detach().float().cpu().tolist() for name, value in parts.items()}
        outcomes: list[RenderResult | EngineError] = []
        for index, request in enumerate(requests):
            image_pixels = pixels[index : index + 1]
            if diverged[index] or not torch.isfinite(image_pixels).all() or not math.isfinite(loss_values[index]):
                outcomes.append(RenderDivergedError("the loss became NaN or infinite; try lower weights or fp32"))
                continue
            clamped = image_pixels.clamp(0, 1)
            if clamped.flatten(2).std(2).max().item() < UNIFORM_STD:
                outcomes.append(RenderDivergedError("the result is a blank, uniform image"))
                continue
            image = images.to_image(clamped)
            if prepared[index].color_source is not None:
                image = images.recombine_color(image, prepared[index].color_source)
            # A batch computes "tv" for all once any image uses it; report it only
            # where asked, so a sidecar does not depend on how jobs were batched.
            own_parts = {
                k: v[index] for k, v in part_values.items() if k != "tv" or request.settings.tv_weight > 0
            }
            stats = RenderStats(
                losses={"total": loss_values[index], **own_parts},
                iterations=request.settings.iterations * len(stages),
                seconds=_seconds_before(request) + seconds, peak_memory_mb=self._peak_memory_mb(),
                device=str(self.device),
                device_name=self.device_name, precision=precision,
                schedule=tuple(side for side, _ in stages), size=image.size,
                cache_hits=hits, cache_misses=misses, torch_threads=torch.get_num_threads(),
                batch_size=len(requests),
                learning_rate=request.settings.resolved_learning_rate(),
                resumed_from=_resumed_iterations(request), seconds_before_resume=_seconds_before(request),
            )
            outcomes.append(RenderResult(image, stats))
        return outcomes

    def _peak_memory_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        # ru_maxrss is in KiB on Linux: the peak of the whole process so far.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _weights_version(weights: str) -> str | tuple[str, int, int]:
    """A weight source as loaded: a .pth file's path with its size and mtime, so
    an engine that outlives a run (a Dask worker's) reads a replaced file again."""
    try:
        stat = Path(weights).stat() if weights not in BUILTIN_WEIGHTS else None
    except OSError:
        stat = None  # load_weights says what is wrong with it
    return (weights, stat.st_size, stat.st_mtime_ns) if stat else weights


def _resumed_iterations(request: RenderRequest) -> int:
    if request.resume is None:
        return 0
    return request.resume.stage * request.settings.iterations + request.resume.iteration


def _seconds_before(request: RenderRequest) -> float:
    return request.resume.seconds if request.resume is not None else 0.0


def stage_sizes(settings: RenderSettings, content_size: tuple[int, int]) -> list[tuple[int, tuple[int, int]]]:
    """(longest side, (w, h)) for each stage; never upscales unless asked."""
    return [(side, images.scaled_size(content_size, side, True)) for side in settings.sides_for(max(content_size))]


def _check_batchable(requests: Sequence[RenderRequest]) -> None:
    signatures = {batch_signature(r.settings) for r in requests}
    if len(signatures) > 1:
        raise EngineError("a batch needs one size, schedule, layer set, optimiser and weight source")
    if len(requests) > 1 and any(r.resume is not None for r in requests):
        raise EngineError("a render resumed from a checkpoint runs on its own, not in a batch")


def _batch_schedule(requests, prepared) -> list[tuple[int, tuple[int, int]]]:
    schedules = [stage_sizes(r.settings, p.content.size) for r, p in zip(requests, prepared)]
    if any(s != schedules[0] for s in schedules):
        raise EngineError("a batch needs contents of one size and one schedule")
    return schedules[0]

