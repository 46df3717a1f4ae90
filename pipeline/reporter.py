"""The contact sheet: `index.html` with contents as rows and styles as columns.

It is rewritten as jobs finish (the recorder paces it), so a half-done night
already has a useful page. That makes cost matter: thumbnails are made once per image and
reused while they are newer than their source, so a rewrite is mostly `stat`
calls plus one template render. All names go through Jinja's autoescaping and
every URL through `quote`, because file names are user data (`<img …>.jpg` is
a legal file name).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import jinja2
import markupsafe
from PIL import Image

from .jobs import RenderJob
from .labels import ShownNames, differing_settings, setting_parts, tell_apart
from .outputs import write_text_atomic
from .sheet_cards import STATUSES, Card, make_card, measured_duration, seconds
from .sheet_variants import order_variants
from .thumbnails import source_thumbnail

SHEET_NAME = "index.html"
# A page written mid-run reloads itself this often, so a tab left open overnight
# follows the run (a reload closes open details; any sooner and it gets in the way).
RELOAD_SECONDS = 60
# While a run lives it rewrites the page at least this often (Recorder.catch_up),
# so a page that says a run is at work and is much older than that was left by
# a run that was killed: it stops reloading and says so. The margin allows for a
# busy machine and for a viewer whose clock is a few minutes off the server's.
HEARTBEAT_SECONDS = 120
STALE_AFTER_SECONDS = 600


@dataclass
class Source:
    """A content or style image as a row or column header."""

    name: str
    thumb: str | None  # quoted relative URL, None when the image is unreadable
    aspect: float = 4 / 3
    href: str = ""  # quoted relative URL of the image itself, to see it whole


@dataclass
class Column:
    styles: list[Source]
    label: str
    variants: list[str] = field(default_factory=list)
    variant_labels: list[list[str]] = field(default_factory=list)  # each variant's chip, a setting a line


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
    written_at: dt.datetime | None = None,
) -> Path:
    """Write `output_dir/index.html` atomically and return its path.

    written_at: the moment the page says it was written (now, unless a test
    wants an old page), timezone-aware."""
    output_dir = Path(output_dir)
    unique = list({job.job_id: job for job in reversed(jobs)}.values())[::-1]
    columns, rows = _grid(output_dir, unique, results)
    written_at = (written_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    html = _template().render(
        title=title,
        generated_at=written_at.strftime("%Y-%m-%d %H:%M UTC"),
        written_ms=round(written_at.timestamp() * 1000),
        stale_after_seconds=STALE_AFTER_SECONDS,
        heartbeat_minutes=HEARTBEAT_SECONDS // 60,
        counts=_counts(unique, results),
        live=any(_under_way(results.get(job.job_id) or {}) for job in unique),
        total=len(unique),
        render_time=measured_duration(sum(seconds(results.get(j.job_id) or {}) for j in unique)),
        columns=columns,
        rows=rows,
        has_variants=any(label for c in columns for label in c.variant_labels),
        print_zoom=print_zoom(sum(len(column.variants) for column in columns)),
        reload_seconds=RELOAD_SECONDS,
    )
    write_text_atomic(output_dir / SHEET_NAME, html)
    return output_dir / SHEET_NAME


# The print styles' widths (index.html.j2): a column is a 150 px card plus 16 px
# of padding, the row headers one more such column; an A4 landscape page with
# 10 mm margins is 277 mm, 1047 CSS px, wide.
PRINT_COLUMN_PX = 166
PRINT_PAGE_PX = 1040


def print_zoom(cell_columns: int) -> str:
    """How much a printed grid of that many card columns is scaled to fit the page."""
    width = PRINT_COLUMN_PX * (cell_columns + 1) + 12  # + the table's right margin
    return f"{min(1.0, PRINT_PAGE_PX / width):.3f}"


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "templates"),
        autoescape=True,  # the template is HTML; names and errors are user data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["soft_breaks"] = soft_breaks
    return env.get_template("index.html.j2")


def soft_breaks(text: str) -> markupsafe.Markup:
    """Escaped text that may wrap after each "," "=" ":" and "_": a phone's narrow
    card breaks "preserve_color=false" as "preserve_" "color=false", not as
    "preserve_colo" "r=false", and a layer weight after its ":", not inside "0.5"."""
    escaped = str(markupsafe.escape(text))
    for mark in ",=:_":
        escaped = escaped.replace(mark, mark + "<wbr>")
    return markupsafe.Markup(escaped)


# -- grid layout ------------------------------------------------------------------


def _grid(output_dir: Path, jobs: list[RenderJob], results: Mapping[str, dict]):
    """Columns (styles with their variants) and rows (contents with their cells)."""
    columns: dict[tuple, Column] = {}
    examples: dict[tuple, dict[str, RenderJob]] = {}
    cells: dict[tuple, list[RenderJob]] = {}  # (content, column, variant) -> its jobs
    names = ShownNames(jobs)
    for job in jobs:  # dicts keep first-appearance order
        # Two blends of the same paintings with other weights are two columns,
        # each under its own name; keyed by the files alone, the second sat
        # under the first one's name.
        key = job.styles, names.style(job)
        columns.setdefault(key, _column(output_dir, job, names))
        examples.setdefault(key, {}).setdefault(job.variant, job)
        cells.setdefault((job.content, key, job.variant), []).append(job)
    stacked: dict[tuple, set[str]] = {}  # column -> settings its stacked plain jobs differ in
    for (_, key, variant), cell in cells.items():
        if not variant and len(cell) > 1:
            stacked.setdefault(key, set()).update(differing_settings(cell))
    for key, column in columns.items():
        column.variants, labels = order_variants(examples[key], stacked.get(key, set()))
        column.variant_labels = [setting_parts(label) for label in labels]
    rows = []
    for content in dict.fromkeys(job.content for job in jobs):
        row = Row(content=_source(output_dir, content, names.contents[content]))
        for key, column in columns.items():
            for variant, label in zip(column.variants, column.variant_labels, strict=True):
                cell = cells.get((content, key, variant), [])
                # Cards name their pair as the row and column do, and a plain job in
                # a sweep by its chip ("style_weight=5"): a bare stem could name
                # two rows ("cat" for a/cat.jpg and b/cat.jpg).
                shown_as = f"{row.content.name} × {column.label}" + (f" · {'; '.join(label)}" if label else "")
                row.cells.append(_cards(output_dir, cell, results, shown_as))
        rows.append(row)
    return list(columns.values()), rows


def _cards(output_dir: Path, cell: list[RenderJob], results: Mapping[str, dict], shown_as: str) -> list[Card]:
    """One cell's cards; several are each tagged, and named, by how they differ."""
    tags = tell_apart(cell) if len(cell) > 1 else [""] * len(cell)
    cards = []
    for job, tag in zip(cell, tags, strict=True):
        card = make_card(output_dir, job, results.get(job.job_id), shown_as + (f" · {tag}" if tag else ""))
        card.tag = tag
        cards.append(card)
    return cards


def _column(output_dir: Path, job: RenderJob, names: ShownNames) -> Column:
    # A blend's label names the whole mix; its header shows each style by file name.
    headers = [Path(s).stem for s in job.styles] if len(job.styles) > 1 else [names.style(job)]
    styles = [_source(output_dir, path, name) for path, name in zip(job.styles, headers, strict=True)]
    return Column(styles=styles, label=names.style(job))


def _source(output_dir: Path, image_path: str, name: str) -> Source:
    relative = source_thumbnail(Path(image_path), output_dir)
    if relative is None:
        return Source(name=name, thumb=None)
    # Relative, as every link of the page is: a folder copied with its inputs beside it keeps working.
    original = quote(Path(os.path.relpath(Path(image_path).resolve(), output_dir.resolve())).as_posix())
    return Source(name=name, thumb=quote(relative), aspect=_aspect(output_dir / relative), href=original)


def _aspect(thumb: Path) -> float:
    """Width / height of a thumbnail, clamped so odd panoramas keep cells usable."""
    try:
        with Image.open(thumb) as image:  # reads the header only
            width, height = image.size
    except OSError:
        return 4 / 3
    return min(max(width / max(height, 1), 0.75), 2.0)


def _under_way(record: dict) -> bool:
    """A job rendering now, or a done one that a --force run renders again."""
    return record.get("status") == "rendering" or "rerendering" in record


def _counts(jobs: list[RenderJob], results: Mapping[str, dict]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for job in jobs:
        status = (results.get(job.job_id) or {}).get("status")
        counts[status if status in counts else "pending"] += 1
    return counts
