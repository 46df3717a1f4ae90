"""The contact sheet: `index.html` with contents as rows and styles as columns.

It is rewritten after every finished job, so a half-done night already has a
useful page. That makes cost matter: thumbnails are made once per image and
reused while they are newer than their source, so a rewrite is mostly `stat`
calls plus one template render. All names go through Jinja's autoescaping and
every URL through `quote`, because file names are user data (`<img …>.jpg` is
a legal file name).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from PIL import Image

from nst_engine.settings import RenderSettings

from .jobs import RenderJob, format_value
from .outputs import THUMBS_DIR, ensure_thumbnail, source_thumbnail, write_text_atomic
from .sheet_variants import order_variants

SHEET_NAME = "index.html"
STATUSES = ("done", "failed", "interrupted", "pending")
# Settings every card shows, whether or not they differ from the defaults.
ALWAYS_SHOWN = ("size", "iterations")


@dataclass
class Source:
    """A content or style image as a row or column header."""

    name: str
    thumb: str | None  # quoted relative URL, None when the image is unreadable
    aspect: float = 4 / 3


@dataclass
class Card:
    job_id: str
    status: str
    href: str | None = None  # quoted URL of the full image
    thumb: str | None = None
    caption: str = ""
    error: str = ""
    tag: str = ""  # tells apart several jobs sharing one cell
    tooltip: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Column:
    styles: list[Source]
    label: str
    variants: list[str] = field(default_factory=list)
    variant_labels: list[str] = field(default_factory=list)  # shown above each variant


@dataclass
class Row:
    content: Source
    cells: list[list[Card]] = field(default_factory=list)  # one per (column, variant)


def write_contact_sheet(
    output_dir: Path,
    jobs: Sequence[RenderJob],
    results: Mapping[str, dict],
    *,
    title: str,
    generated_at: str | None = None,
) -> Path:
    """Write `output_dir/index.html` atomically and return its path."""
    output_dir = Path(output_dir)
    unique = list({job.job_id: job for job in reversed(jobs)}.values())[::-1]
    columns, rows = _grid(output_dir, unique, results)
    now = dt.datetime.now(dt.timezone.utc)
    html = _template().render(
        title=title,
        generated_at=generated_at or now.strftime("%Y-%m-%d %H:%M UTC"),
        counts=_counts(unique, results),
        total=len(unique),
        render_time=_duration(sum(_seconds(results.get(j.job_id) or {}) for j in unique)),
        columns=columns,
        rows=rows,
        has_variants=any(label for c in columns for label in c.variant_labels),
    )
    write_text_atomic(output_dir / SHEET_NAME, html)
    return output_dir / SHEET_NAME


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "templates"),
        autoescape=True,  # the template is HTML; names and errors are user data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("index.html.j2")


# -- grid layout ------------------------------------------------------------------


def _grid(output_dir: Path, jobs: list[RenderJob], results: Mapping[str, dict]):
    """Columns (styles with their variants) and rows (contents with their cells)."""
    columns: dict[tuple[str, ...], Column] = {}
    examples: dict[tuple[str, ...], dict[str, RenderJob]] = {}
    contents: dict[str, list[RenderJob]] = {}
    for job in jobs:  # dicts keep first-appearance order
        columns.setdefault(job.styles, _column(output_dir, job))
        examples.setdefault(job.styles, {}).setdefault(job.variant, job)
        contents.setdefault(job.content, []).append(job)
    for key, column in columns.items():
        column.variants, column.variant_labels = order_variants(examples[key])
    slots = [(key, variant) for key, col in columns.items() for variant in col.variants]
    rows = []
    for content, its_jobs in contents.items():
        row = Row(content=_source(output_dir, content, its_jobs[0].content_label))
        for key, variant in slots:
            cell = [j for j in its_jobs if j.styles == key and j.variant == variant]
            cards = [_card(output_dir, j, results.get(j.job_id)) for j in cell]
            if len(cards) > 1:
                for card, job in zip(cards, cell, strict=True):
                    card.tag = job.source or job.job_id[:6]
            row.cells.append(cards)
        rows.append(row)
    return list(columns.values()), rows


def _column(output_dir: Path, job: RenderJob) -> Column:
    # A blend's label names the whole mix; its header shows each style by file name.
    names = [Path(s).stem for s in job.styles] if len(job.styles) > 1 else [job.style_label]
    styles = [_source(output_dir, path, name) for path, name in zip(job.styles, names, strict=True)]
    return Column(styles=styles, label=job.style_label)


def _source(output_dir: Path, image_path: str, name: str) -> Source:
    relative = source_thumbnail(Path(image_path), output_dir)
    if relative is None:
        return Source(name=name, thumb=None)
    return Source(name=name, thumb=quote(relative), aspect=_aspect(output_dir / relative))


def _aspect(thumb: Path) -> float:
    """Width / height of a thumbnail, clamped so odd panoramas keep cells usable."""
    try:
        with Image.open(thumb) as image:  # reads the header only
            width, height = image.size
    except OSError:
        return 4 / 3
    return min(max(width / max(height, 1), 0.75), 2.0)


# -- one card per job ---------------------------------------------------------------


def _card(output_dir: Path, job: RenderJob, record: dict | None) -> Card:
    record = record or {}
    status = record.get("status")
    if status not in STATUSES:
        status = "pending"  # no result yet, or a status this page does not know
    card = Card(job_id=job.job_id, status=status)
    if status == "pending":
        card.tooltip = f"{job.content_label} × {job.style_label}: pending"
        return card
    card.details = _details(job, record)
    card.error = str(record.get("error") or "")
    card.caption = _caption(record)
    card.tooltip = "\n".join(
        [f"{job.content_label} × {job.style_label}" + (f" · {job.variant}" if job.variant else "")]
        + [f"{k}: {v}" for k, v in card.details if k not in ("job id", "finished")]
    )
    if status == "done":
        image = output_dir / job.output_name
        thumb = Path(THUMBS_DIR) / f"{job.job_id}.jpg"
        card.href = quote(Path(job.output_name).as_posix())
        if ensure_thumbnail(image, output_dir / thumb):
            card.thumb = quote(thumb.as_posix())
    return card


def _details(job: RenderJob, record: dict) -> list[tuple[str, str]]:
    """Label/value pairs shown on hover (title) and on click (<details>)."""
    stats = record.get("stats") or {}
    rows = _settings_shown(job, record) + _losses(stats.get("losses") or {}) + _run_facts(record)
    if record.get("error"):
        rows.append(("error", str(record["error"])))
    rows.append(("job id", job.job_id))
    if record.get("finished_at"):
        rows.append(("finished", str(record["finished_at"])))
    return rows


def _run_facts(record: dict) -> list[tuple[str, str]]:
    """Time, device and memory; each only when the record has it."""
    stats = record.get("stats") or {}
    facts = []
    if stats.get("seconds") is not None:
        facts.append(("time", _duration(_seconds(record))))
    if _device(record):
        name = record.get("device_name")
        facts.append(("device", _device(record) + (f" ({name})" if name else "")))
    if stats.get("iterations") is not None:
        facts.append(("steps run", str(stats["iterations"])))
    if stats.get("resumed_from"):
        facts.append(("resumed at step", str(stats["resumed_from"])))
    if isinstance(stats.get("peak_memory_mb"), (int, float)):
        facts.append(("peak memory", f"{stats['peak_memory_mb']:,.0f} MB"))
    if record.get("memory_fallback"):
        facts.append(("memory fallback", str(record["memory_fallback"])))
    cache = stats.get("cache") or {}
    if cache:
        facts.append(("style cache", f"{cache.get('hits', 0)} hit · {cache.get('misses', 0)} miss"))
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
    shown = []
    for name, value in settings.items():
        if name in ALWAYS_SHOWN or defaults.get(name, object()) != value:
            shown.append((name, f"{value} px" if name == "size" else format_value(value)))
    order = {name: i for i, name in enumerate(ALWAYS_SHOWN)}
    return sorted(shown, key=lambda item: order.get(item[0], len(order)))


def _losses(losses: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Headline losses one per line; per-layer parts (dotted names) folded into one."""
    rows = []
    parts = []
    for name, value in losses.items():
        text = _number(value)
        if "." in name:
            parts.append(f"{name.split('.', 1)[1]} {text}")
        else:
            rows.append((f"loss {name}" if name != "total" else "loss", text))
    if parts:
        rows.append(("loss by layer", " · ".join(parts)))
    return rows


def _caption(record: dict) -> str:
    stats = record.get("stats") or {}
    bits = []
    if stats.get("seconds") is not None:
        bits.append(_duration(_seconds(record)))
    if _device(record):
        bits.append(_device(record))
    return " · ".join(bits)


# -- small formatting helpers -----------------------------------------------------------


def _counts(jobs: list[RenderJob], results: Mapping[str, dict]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for job in jobs:
        status = (results.get(job.job_id) or {}).get("status")
        counts[status if status in counts else "pending"] += 1
    return counts


def _seconds(record: Mapping[str, Any]) -> float:
    value = (record.get("stats") or {}).get("seconds")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
