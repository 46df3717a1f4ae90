"""RenderJob: the plain, frozen unit of work, and the hashes that name it.

A job id must stay the same across processes, machines and runs, so it is a
sha256 of canonical JSON over file *bytes* and resolved settings. Python's
`hash()` is salted per process and joblib's hash of tensors is unstable
(joblib#1282), so neither is used.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from nst_engine import ENGINE_VERSION
from nst_engine.checksums import CAFFE_IDENTITY, TORCHVISION_CHECKPOINT, sha256_file
from nst_engine.setting_values import BUILTIN_WEIGHTS
from nst_engine.settings import RenderSettings

JOB_ID_LENGTH = 12
CHECKPOINT_DIR = ".checkpoints"  # inside the output folder; one file per unfinished job


@dataclass(frozen=True)
class WorkerOptions:
    """How workers render (not what): plain data handed to every worker process."""

    output_dir: str
    cache_dir: str | None = None  # None: the engine's default (XDG)
    checkpoint_every: int = 50  # iterations; 0 disables checkpoints
    progress_every: int = 10
    threads: int = 0  # torch intra-op threads per worker; 0 = torch's default
    manifest_dir: str | None = None  # inputs are named from here in messages, as the plan names them


@dataclass(frozen=True)
class RenderJob:
    """One output image: a content, one or more styles (a blend), resolved settings."""

    job_id: str
    content: str  # absolute path
    styles: tuple[str, ...]  # absolute paths; more than one means a blend
    settings: RenderSettings
    output_name: str  # path of the image relative to the output folder
    content_label: str
    style_label: str
    variant: str = ""  # sweep values, e.g. "style_weight=1000"; "" when not swept
    source: str = ""  # where in the manifest it came from, e.g. "jobs[1]"
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    # (path, sha256) of each input file, as hashed into job_id. A file can
    # change between planning and rendering; the worker checks the bytes it
    # renders against these, so an id never names another image's render.
    # Empty for a job not built from files (nst report, tests): nothing to check.
    digests: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def sidecar_name(self) -> str:
        return str(Path(self.output_name).with_suffix(".json"))

    @property
    def pixels(self) -> int:
        """Rough work measure used to order the queue (largest first)."""
        return self.settings.size**2 * self.settings.iterations * len(self.settings.schedule())

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "content": self.content,
            "styles": list(self.styles),
            "settings": self.settings.to_dict(),
            "output": self.output_name,
            "content_label": self.content_label,
            "style_label": self.style_label,
            "variant": self.variant,
        }


def threads_per_worker(cpu_workers: int, workers: int) -> int:
    """torch threads for each of `workers` render processes on one host, of which
    `cpu_workers` render on the CPU: CPU workers split the cores (OpenMP threads
    that outnumber them spin against each other); GPU workers need only a few for
    the host side. Local runs and Dask workers share the rule."""
    cores = os.cpu_count() or 1
    if cpu_workers:
        return max(1, cores // cpu_workers)
    return max(1, min(4, cores // max(1, workers)))


@lru_cache(maxsize=4096)
def _file_digest_cached(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised on path, mtime and size)."""
    stat = Path(path).stat()
    return _file_digest_cached(str(path), stat.st_mtime_ns, stat.st_size)


def input_digest(path: str | Path) -> str:
    """file_digest of a photo, painting or init image. One that is there but
    cannot be read (no permission, a bad disk sector) gets a stand-in naming
    its path and error: its jobs fail at render time with that reason, and the
    rest of the gallery renders. Once it can be read, its real digest gives its
    jobs new ids, and they render."""
    try:
        return file_digest(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        reason = f"{Path(path)}\0{error.strerror or error}"
        return "unreadable:" + hashlib.sha256(reason.encode()).hexdigest()


def weights_identity(weights: str) -> str:
    """A stable name for the weight source: its checksum where we have the file."""
    if weights == "caffe":
        return CAFFE_IDENTITY
    if weights == "torchvision":
        return f"torchvision:{TORCHVISION_CHECKPOINT}"
    if weights in BUILTIN_WEIGHTS:  # pragma: no cover - keeps the two lists honest
        raise AssertionError(weights)
    return f"file:{file_digest(weights)}"


@lru_cache(maxsize=4096)
def _settings_dict(settings: RenderSettings) -> dict[str, Any]:
    # A sweep shares one settings object among all its photos and paintings;
    # dataclasses.asdict on each of 24,000 jobs took seconds. Callers copy it.
    return settings.to_dict()


def job_identity(
    content: str, styles: tuple[str, ...], settings: RenderSettings
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The job id, and the (path, sha256) of each input file it was computed from
    (content, styles, then an init image): RenderJob.digests."""
    settings_dict = dict(_settings_dict(settings))  # only top-level keys change below
    init = settings.init_file()
    files: tuple[tuple[str, str], ...] = ()
    if init:
        files = ((init, input_digest(init)),)
        settings_dict["init"] = f"file:{files[0][1]}"  # bytes, not the path
    if settings.weights not in BUILTIN_WEIGHTS:
        settings_dict["weights"] = "file"  # identified by checksum below
    content_digest = input_digest(content)
    style_digests = [input_digest(s) for s in styles]
    payload = {
        "content": content_digest,
        "styles": style_digests,
        "settings": settings_dict,
        "weights": weights_identity(settings.weights),
        "engine": ENGINE_VERSION,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    job_id = hashlib.sha256(canonical.encode()).hexdigest()[:JOB_ID_LENGTH]
    return job_id, ((content, content_digest), *zip(styles, style_digests), *files)


_SAFE_PUNCTUATION = frozenset("._=+-")
# A file name holds 255 bytes; the slug, "-<id>.png" (17) and the atomic writer's
# temporary ".NAME.xxxxxxxx.tmp" (about 14 more) must all fit.
_SLUG_BYTES = 200
_UNSAFE_ASCII_RUN = re.compile("[^A-Za-z0-9" + re.escape("".join(sorted(_SAFE_PUNCTUATION))) + "]+")


def _is_safe(char: str) -> bool:
    # Letters, digits and combining marks of any script (猫, ü, हिन्दी) keep a name
    # readable. In ASCII that is exactly A-Z, a-z and 0-9, so ASCII names, and
    # the outputs already on disk, are unchanged.
    return char in _SAFE_PUNCTUATION or unicodedata.category(char)[0] in "LNM"


@lru_cache(maxsize=4096)  # each label is asked for once per job; a sweep repeats them
def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe version of a label: readable in any script, never a path
    separator, control character or leading dot, at most `limit` characters."""
    if text.isascii():  # the common case, ~10x faster, and the same result
        cleaned = _UNSAFE_ASCII_RUN.sub("_", text).strip("._") or "x"
    else:
        # NFC: macOS spells ü as u + a combining mark; one photo must get one name.
        marked = "".join(c if _is_safe(c) else "\0" for c in unicodedata.normalize("NFC", text))
        cleaned = re.sub("\0+", "_", marked).strip("._") or "x"
    cleaned = cleaned[:limit]
    while len(cleaned.encode()) > _SLUG_BYTES:
        cleaned = cleaned[:-1]
    # Cut short, a name may end in a "_" or "." it had inside: dropped as at the ends.
    return cleaned.rstrip("._") or "x"


def format_value(value: Any) -> str:
    """Short, stable text for a swept value: 1000.0 -> 1000, 0.5 -> 0.5, 1e5 -> 1e5,
    and booleans as the manifest spells them (YAML's true/false, not Python's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{format_value(v)}" for k, v in value.items())
    return str(value)


def _float_text(value: float) -> str:
    """`g` format, but a power-of-ten-like number reads as 1e4 and 1e6 rather than
    10000 and 1e+06: a strip of 1e4, 1e5, 1e6 then reads alike, and a file name
    has no "+". Plain wherever that is about as short (1000, 25000, 0.001)."""
    general = f"{value:g}"
    if not math.isfinite(value):
        return general
    mantissa, _, exponent = (general if "e" in general else f"{value:.5e}").partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    scientific = f"{mantissa}e{int(exponent)}"
    return scientific if "e" in general or len(scientific) + 2 <= len(general) else general


def checkpoint_path(output_dir: str | Path, job_id: str) -> Path:
    """Where a worker keeps an unfinished job's pixels; deleted once the output exists."""
    return Path(output_dir) / CHECKPOINT_DIR / f"{job_id}.pt"
