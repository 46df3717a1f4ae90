"""One card of the contact sheet: a job's status, thumbnail, caption and details.

Split from reporter.py, which lays out the grid; the details (hover and click)
show the settings, what the engine made of the automatic ones, losses, time,
device, and a re-render that did not replace the image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nst_engine.settings import RenderSettings

from .jobs import RenderJob, format_value
from .labels import setting_parts
from .outputs import THUMBS_DIR
from .thumbnails import ensure_thumbnail

# "rendering" lives only in a running run's sheet (Recorder.mark_started), never in results.jsonl.
STATUSES = ("done", "failed", "interrupted", "rendering", "pending")
# Settings every card shows, whether or not they differ from the defaults.
ALWAYS_SHOWN = ("size", "iterations")


@dataclass
class Card:
    job_id: str
    status: str
    href: str | None = None  # quoted URL of the full image
    sidecar_href: str | None = None  # quoted URL of its sidecar JSON: every setting and statistic
    thumb: str | None = None
    caption: str = ""
    error: str = ""
    tag: str = ""  # tells apart several jobs sharing one cell
    activity: str = ""  # a rendering job's device and start, e.g. "on cuda:0 since 02:14"
    tooltip: str = ""
    shown_as: str = ""  # the pair as the sheet names it: the details panel's heading
    details: list[tuple[str, str]] = field(default_factory=list)


def make_card(output_dir: Path, job: RenderJob, record: dict | None, shown_as: str = "") -> Card:
    """shown_as: the pair as the sheet names it ("a/cat.jpg × starry · style_weight=5");
    the first line of the tooltip and the picture's alt text."""
    shown_as = shown_as or f"{job.content_label} × {job.style_label}" + (f" · {job.variant}" if job.variant else "")
    record = record or {}
    status = record.get("status")
    if status not in STATUSES:
        status = "pending"  # no result yet, or a status this page does not know
    card = Card(job_id=job.job_id, status=status, shown_as=shown_as)
    if status == "pending":
        card.tooltip = f"{shown_as}: pending"
        return card
    if status == "rendering":
        card.activity = _under_way(record)
        card.tooltip = f"{shown_as}: rendering {card.activity}".rstrip()
        return card
    card.details = _details(job, record)
    card.error = _short_reason(str(record.get("error") or ""))
    # A failed card's line opens the whole reason: "details" says so, where the
    # device alone ("cpu") did not invite a click.
    card.caption = "details" if status == "failed" else _caption(record)
    if status == "done" and record.get("rerendering"):  # a --force run renders it again now
        card.activity = f"rendering again {_under_way(record['rerendering'])}".rstrip()
        card.caption = card.activity
    card.tooltip = "\n".join(
        [shown_as] + [f"{k}: {v}" for k, v in card.details if k not in ("job id", *_ENDED.values())]
    )
    if status == "done":
        image = output_dir / job.output_name
        thumb = Path(THUMBS_DIR) / f"{job.job_id}.jpg"
        card.href = quote(Path(job.output_name).as_posix())
        if (output_dir / job.sidecar_name).is_file():
            card.sidecar_href = quote(Path(job.sidecar_name).as_posix())
        if ensure_thumbnail(image, output_dir / thumb):
            card.thumb = quote(thumb.as_posix())
        elif image.is_file():  # the thumbnail cannot be written (a full disk, a read-only thumbs/)
            card.thumb = card.href  # the full image, slower to load, rather than "image not found"
    return card


# What the time a record ends with is called: an interrupted job did not finish.
_ENDED = {"done": "finished", "failed": "failed", "interrupted": "stopped"}


def _under_way(record: dict) -> str:
    """Where and since when a job renders: "on cuda:0 since 02:14 UTC"."""
    device, since = record.get("device"), str(record.get("started_at") or "")[11:16]  # HH:MM, UTC
    return " ".join(filter(None, [f"on {device}" if device else "", f"since {since} UTC" if since else ""]))


def _details(job: RenderJob, record: dict) -> list[tuple[str, str]]:
    """Label/value pairs shown on hover (title) and on click (<details>)."""
    stats = record.get("stats") or {}
    settings = record.get("settings") or job.settings.to_dict()
    rows = (_settings_shown(job, record) + _effective(record) + _losses(stats.get("losses") or {}, settings)
            + _run_facts(record))
    if record.get("error"):
        rows.append(("error", str(record["error"])))
    rerender = record.get("last_rerender") or {}
    # A --force re-render that failed or was interrupted: the image shown is the earlier one.
    # A `done` one would have replaced the image; results.jsonl written before renames
    # stopped counting as re-renders (job_state.shown_record) still holds such lines.
    if rerender.get("status") and rerender["status"] != "done":
        said = str(rerender.get("error") or "")
        what = said if said.startswith(rerender["status"]) else f"{rerender['status']}: {said}".rstrip(": ")
        rows.append(("last re-render", f"{what} (this image is the earlier render)"))
    rows.append(("job id", job.job_id))
    if record.get("finished_at"):
        rows.append((_ENDED.get(str(record.get("status")), "finished"), str(record["finished_at"])))
    return rows


def _run_facts(record: dict) -> list[tuple[str, str]]:
    """Time, device and memory; each only when the record has it."""
    stats = record.get("stats") or {}
    facts = []
    if stats.get("seconds") is not None:
        facts.append(("time", measured_duration(seconds(record))))
    if _device(record):
        name = record.get("device_name")
        facts.append(("device", _device(record) + (f" ({name})" if name else "")))
    if record.get("dask_worker"):  # a cluster's "cuda:0" is on every machine: say which
        host = record.get("host")
        facts.append(("Dask worker", record["dask_worker"] + (f" on {host}" if host else "")))
    if stats.get("iterations") is not None:
        facts.append(("steps run", str(stats["iterations"])))
    if stats.get("resumed_from"):
        # "time" is the whole render's; this says how much of it came before the resume.
        before = stats.get("seconds_before_resume")
        after = f" (after {measured_duration(before)})" if isinstance(before, (int, float)) and before > 0 else ""
        facts.append(("resumed at iteration", f"{stats['resumed_from']}{after}"))
    if isinstance(stats.get("peak_memory_mb"), (int, float)):
        facts.append(("peak memory", f"{stats['peak_memory_mb']:,.0f} MB"))
    if record.get("memory_fallback"):
        facts.append(("memory fallback", str(record["memory_fallback"])))
    cache = stats.get("cache") or {}
    if cache:
        hits, misses = cache.get("hits", 0), cache.get("misses", 0)
        facts.append(("style cache", f"{hits} hit{'' if hits == 1 else 's'} · {misses} miss{'' if misses == 1 else 'es'}"))
    if (record.get("attempts") or 1) > 1:
        facts.append(("attempts", str(record["attempts"])))
    return facts


def _device(record: dict) -> str:
    # Workers report the device in the stats or, via the recorder, at the top level.
    return str((record.get("stats") or {}).get("device") or record.get("device") or "")


@lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    return RenderSettings().to_dict()


def _settings_shown(job: RenderJob, record: dict) -> list[tuple[str, str]]:
    settings = record.get("settings") or job.settings.to_dict()
    defaults = _defaults()
    # A sweep's point at the default value (style_weight 5 of 1, 5, 25) is shown
    # like its neighbours: it was asked for, and the card would not say which point it is.
    swept = {part.split("=", 1)[0] for part in setting_parts(job.variant)}
    shown = []
    for name, value in settings.items():
        if name in ALWAYS_SHOWN or name in swept or defaults.get(name, object()) != value:
            shown.append((name, f"{value} px" if name == "size" else format_value(value)))
    order = {name: i for i, name in enumerate(ALWAYS_SHOWN)}
    return sorted(shown, key=lambda item: order.get(item[0], len(order)))


def _effective(record: dict) -> list[tuple[str, str]]:
    """The values the engine used for settings left automatic (learning_rate 0, scales [])."""
    effective = record.get("effective") or {}
    rows = []
    if isinstance(effective.get("scales"), list) and effective["scales"]:
        rows.append(("scales used", " → ".join(f"{side}" for side in effective["scales"]) + " px"))
    if isinstance(effective.get("learning_rate"), (int, float)):
        rows.append(("learning rate used", format_value(effective["learning_rate"])))
    return rows


def _losses(losses: Mapping[str, Any], settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The objective and its weighted parts, then each part before its weight.

    "content" and "style" are weighted (style_weight × the style error), the
    per-layer parts ("style.relu1_1") are not: shown side by side under one
    name, a sweep's style loss seemed to climb 20× with style_weight while the
    style error barely moved. Unweighted, the parts compare across a sweep."""
    rows = []
    if "total" in losses:
        rows.append(("loss", _number(losses["total"])))
    weighted = [f"{part} {_number(losses[part])}" for part in ("content", "style", "tv") if part in losses]
    if weighted:
        rows.append(("weighted parts", " · ".join(weighted)))
    for part in ("style", "content"):
        layers = [f"{name.split('.', 1)[1]} {_number(value)}" for name, value in losses.items()
                  if name.startswith(f"{part}.")]
        whole = _unweighted(losses.get(part), settings.get(f"{part}_weight"))
        if layers or whole:
            shown = " · ".join(layers)
            rows.append((f"{part}, unweighted", f"{whole} ({shown})" if whole and shown else whole or shown))
    return rows


def _unweighted(weighted: Any, weight: Any) -> str:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (weighted, weight)) or not weight:
        return ""
    return _number(weighted / weight)


# The folders before a file's name at the start of a reason: the card sits in
# that file's row or column already, and a narrow card showed little besides.
_LEADING_FOLDERS = re.compile(r"^\S*/(?=[^\s/]+\.[A-Za-z0-9]+[\s:,)])")


def _short_reason(error: str) -> str:
    """The reason as the card shows it: "cronphotos/empty.jpg is empty" ->
    "empty.jpg is empty". The tooltip and the details keep it whole."""
    return _LEADING_FOLDERS.sub("", error, count=1)


def _caption(record: dict) -> str:
    stats = record.get("stats") or {}
    bits = []
    if stats.get("seconds") is not None:
        bits.append(measured_duration(seconds(record)))
    if _device(record):
        bits.append(_device(record))
    if stats.get("resumed_from"):
        # On the face, not only in the details: such a render is not pixel-identical
        # to an uninterrupted one (README), so it must stand out in a strip.
        bits.append(f"resumed at {stats['resumed_from']}")
    return " · ".join(bits)


# -- small formatting helpers -----------------------------------------------------------


def seconds(record: Mapping[str, Any]) -> float:
    value = (record.get("stats") or {}).get("seconds")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def measured_duration(seconds: float) -> str:
    """A time that was measured: "12.3 s", "4 min 05 s", "2 h 07 min"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
