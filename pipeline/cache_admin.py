"""`nst cache info|clear` and the plan's "cached" column.

These commands never start workers, so importing the engine here (lazily, and
never CUDA) does not break the rule that a render's parent stays torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import Any

from nst_engine.checksums import CAFFE_IDENTITY
from nst_engine.settings import RenderSettings


def _cache():
    from nst_engine.cache_location import default_cache_dir
    from nst_engine.targets import StyleTargetCache

    return StyleTargetCache(default_cache_dir())


def cache_warning() -> str | None:
    """Why this machine's style-target cache cannot be used, as a warning, or None."""
    from nst_engine.cache_location import cache_problem, default_cache_dir

    directory = default_cache_dir()
    problem = cache_problem(directory)
    if problem is None:
        return None
    return (f"the style-target cache {directory} cannot be written ({problem}): every render computes its "
            "styles' targets afresh; set NST_CACHE_DIR to a folder this user can write")


def warn_if_the_cache_cannot_be_written() -> None:
    """A misconfigured NST_CACHE_DIR in cron's environment would cost every run
    its cached styles, silently: the run's log says so instead."""
    warning = cache_warning()
    if warning:
        logging.getLogger("nst").warning("%s", warning)


def cache_summary() -> str:
    from .labels import count, data_size

    cache = _cache()
    entries, size, broken = cache.disk_usage()
    damaged = f" ({broken} not whole: computed again when next used)" if broken else ""
    return f"{cache.directory}\n{count(entries, 'style target')}, {data_size(size)}{damaged}"


def clear_cache() -> str:
    from .labels import count

    cache = _cache()
    removed = cache.clear()
    return f"removed {count(removed, 'style target')} from {cache.directory}"


def cached_style_count(styles: Iterable[tuple[str, RenderSettings, int]],
                       device_types: Collection[str] = ("cpu",)) -> int:
    """Distinct style files whose Gram matrices for a job's last stage are on disk.

    `styles`: (style path, settings, the longest side the job renders at, as
    capped by a smaller photo). `device_types`: "cpu" and/or "cuda", where the
    run's workers may be: the precision `auto` picks, and so the cache entry a
    render reads, depends on it. With both (a cluster, or devices left to
    detection), an entry for either counts.
    """
    from nst_engine import cpu_model, images
    from nst_engine.stage_targets import style_target_key
    from nst_engine.targets import entry_is_whole

    cache = _cache()
    if cache.directory is None:
        return 0
    precisions = {}  # per settings' precision value; the CPU probe runs once
    found: set[str] = set()
    asked: set[tuple] = set()
    decoded: dict[str, Any] = {}  # path -> image, or None where it cannot be read
    # A sweep repeats each (style, size, layers) question thousands of times:
    # decode each file once and look each key up once (a 24,000-job sweep
    # spent 10 s here decoding the same two paintings).
    for path, settings, final_side in styles:
        if path in found or settings.weights != "caffe":
            continue
        if settings.precision not in precisions:
            native_bf16 = "cpu" in device_types and cpu_model.cpu_has_native_bf16()
            precisions[settings.precision] = sorted(
                {settings.resolved_precision(kind, native_bf16) for kind in device_types})
        layers = tuple(name for name, _ in settings.style_layers)
        question = (path, settings.style_side(final_side), layers, settings.pooling, settings.precision)
        if question in asked:
            continue
        asked.add(question)
        if path not in decoded:
            try:
                decoded[path] = images.load_image(path)
            except Exception:
                decoded[path] = None  # a broken style fails its jobs at render time, with its reason
        if decoded[path] is None:
            continue
        for precision in precisions[settings.precision]:
            key, _ = style_target_key(decoded[path], final_side, settings, precision, CAFFE_IDENTITY)
            if entry_is_whole(cache.entry_path(key)):
                found.add(path)
                break
    return len(found)
