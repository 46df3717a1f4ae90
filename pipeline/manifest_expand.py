"""Expand checked manifest entries into RenderJobs: contents × style columns × sweep grid.

Settings precedence, lowest first: RenderSettings defaults < top `preset` <
top `settings` < entry `preset` < entry `settings` < blend `weights` < sweep values.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, NamedTuple

from nst_engine.errors import SettingsError
from nst_engine.settings import RenderSettings

from .jobs import RenderJob, format_value, job_identity
from .labels import count
from .manifest_duplicates import drop_duplicates
from .manifest_images import IMAGE_SUFFIXES, OutputFolder, describe_suffixes, expand_images
from .manifest_inputs import (
    Layer,
    Setting,
    check_name_template,
    preset_layer,
    render_name,
    resolve_settings,
    settings_layer,
    sweep_axes,
)
from .manifest_schema import BlendModel, EntryModel, TopModel, salvage_items, validate_model
from .outputs import png_job_id
from .yaml_lines import Loc, Problems, where

DEFAULT_NAME = "{content}--{style}"
# More than a night on 8 GPUs at ~1 s an image; a plan of 100,000 jobs took 43 s.
MAX_JOBS = 200_000


class _Column(NamedTuple):
    """One style column of the contact sheet: a single style or a blend."""

    files: tuple[Path, ...]
    label: str
    weights: Layer  # {"style_blend": ...} for a blend with weights, else {}


_NO_STYLE = _Column((), "", {})  # stands in when no style is usable, so settings still get checked


class Expander:
    """Builds the jobs of every entry, reporting problems instead of stopping at them.

    A part with a problem is reported and left out, and the rest is still
    checked; but no job is built from an entry with any problem, since its
    settings could be wrong and raise false duplicate alarms.
    """

    def __init__(self, base: Path, problems: Problems, top: TopModel, trusted: bool, outputs: OutputFolder) -> None:
        self.base = base
        self.outputs = outputs
        self.problems = problems
        self.notices: list[str] = []  # worth a warning, not worth refusing the manifest
        self.copies: list[str] = []  # a notice per file that is a byte-for-byte copy of another
        preset, preset_ok = preset_layer(top.preset, ("preset",), problems)
        settings, settings_ok = settings_layer(top.settings, ("settings",), base, problems)
        self.top_axes, axes_ok = sweep_axes(top.sweep, ("sweep",), base, problems)
        self.layers = [preset, settings]
        self.trusted = trusted and preset_ok and settings_ok and axes_ok

    def expand(self, entries: list[Any]) -> list[RenderJob]:
        built: list[tuple[RenderJob, Loc]] = []
        for index, raw in enumerate(entries):
            built += self._entry(("jobs", index), raw, before=len(built))
        skipped = len(self.outputs.skipped)
        if skipped:
            self.notices.append(
                f"{skipped} image{'s' if skipped > 1 else ''} inside the output folder '{self.outputs.shown}' "
                f"left out of folders and globs, so renders never become inputs (name a file to use it)")
        passed_over = self.outputs.passed_over
        if passed_over:
            self.notices.append(
                f"folders and globs passed over {describe_suffixes(passed_over)}: nst reads "
                f"{', '.join(IMAGE_SUFFIXES)} (convert the others to JPEG or PNG to render them)")
        kept = drop_duplicates(built, self.problems, self.base,
                               rendered=lambda job: png_job_id(self.outputs.path / job.output_name) == job.job_id)
        self.notices += kept.notices
        self.copies = kept.copies
        return kept.jobs

    def _entry(self, path: Loc, raw: Any, before: int = 0) -> list[tuple[RenderJob, Loc]]:
        """The entry's jobs; `before`: how many the entries above it made."""
        # Salvage: a key with a bad value is reported and left out, and the rest of
        # the entry is still checked, so one pass lists every mistake.
        entry, bad_keys = validate_model(EntryModel, raw, path, self.problems, salvage=True)
        if not isinstance(entry, EntryModel):
            return []
        contents, contents_ok = self._contents(entry, raw, path, bad_keys)
        columns, columns_ok = self._columns(entry, raw, path, bad_keys)
        preset, preset_ok = preset_layer(entry.preset, path + ("preset",), self.problems)
        settings, settings_ok = settings_layer(entry.settings, path + ("settings",), self.base, self.problems)
        axes, axes_ok = sweep_axes(entry.sweep, path + ("sweep",), self.base, self.problems)
        name_problem = check_name_template(entry.name) if entry.name else None
        if name_problem:
            self.problems.add(path + ("name",), name_problem)
        if not self._within_limit(path, len(contents), len(columns or [_NO_STYLE]), {**self.top_axes, **axes}, before):
            return []
        grid = _grid({**self.top_axes, **axes})
        resolved = self._resolve(path, columns or [_NO_STYLE], [*self.layers, preset, settings], grid)
        # A mistyped key may have been meant to make this entry differ from another.
        oks = (self.trusted, not bad_keys, contents_ok, columns_ok, preset_ok, settings_ok, axes_ok)
        if name_problem or not all(oks):
            return []
        return self._build(path, contents, columns, resolved, grid, entry.name)

    def _within_limit(self, path: Loc, contents: int, styles: int, axes: dict[str, list[Setting]], before: int) -> bool:
        """Counted before any job is made: a typo in a sweep (ten values for each
        of seven settings) made ten million jobs, and the plan grew past 2 GB."""
        points = math.prod(len(values) for values in axes.values())
        jobs = contents * styles * points
        if before + jobs <= MAX_JOBS:
            return True
        made = " × ".join([count(contents, "content"), count(styles, "style")]
                          + ([f"{points:,} sweep points"] if axes else []))
        above = f", after {before:,} from the entries above it" if before else ""
        self.problems.add(path, f"makes {jobs:,} jobs ({made}){above}; a manifest makes at most {MAX_JOBS:,}: "
                                "sweep fewer values, or split it into several manifests")
        return False

    def _contents(self, entry: EntryModel, raw: dict, path: Loc, bad: set[str]) -> tuple[list[Path], bool]:
        files: list[Path] = []
        items, ok = _pick(entry, raw, path, ("content", "contents"), bad, self.problems)
        for spec, spec_path in items:
            found, problem = expand_images(spec, self.base, self.outputs)
            if problem:
                self.problems.add(spec_path, problem)
            ok = ok and not problem
            # One list names a set: a file that a glob and a folder both name counts once.
            files += [f for f in found if f not in files]
        return files, ok and bool(files)

    def _columns(self, entry: EntryModel, raw: dict, path: Loc, bad: set[str]) -> tuple[list[_Column], bool]:
        columns: list[_Column] = []
        items, ok = _pick(entry, raw, path, ("style", "styles"), bad, self.problems)
        for item, item_path in items:
            if isinstance(item, BlendModel):
                found = [self._blend(item, item_path)]
            else:
                files, problem = expand_images(item, self.base, self.outputs)
                if problem:
                    self.problems.add(item_path, problem)
                found = [_Column((f,), f.stem, {}) for f in files]
            ok = ok and None not in found and bool(found)
            columns += [c for c in found if c is not None and c not in columns]
        return columns, ok and bool(columns)

    def _blend(self, blend: BlendModel, path: Loc) -> _Column | None:
        files: list[Path] = []
        ok = True
        for index, spec in enumerate(blend.blend):
            found, problem = expand_images(spec, self.base, self.outputs)
            if problem:
                self.problems.add(path + ("blend", index), problem)
            ok = ok and not problem
            files += [f for f in found if f not in files]
        if ok and len(files) < 2:
            # Counted after dropping repeats: say so, or "got 1" contradicts the two listed.
            repeats = " (the same file named twice counts once)" if len(blend.blend) > len(files) else ""
            self.problems.add(path + ("blend",), f"a blend needs at least 2 different styles, got {len(files)}{repeats}")
            ok = False
        weights: Layer = {}
        if blend.weights is not None:
            if ok and len(blend.weights) != len(files):
                message = f"has {count(len(blend.weights), 'weight')} for {count(len(files), 'style')}: give one weight per style"
                self.problems.add(path + ("weights",), message)
                ok = False
            weights = {"style_blend": Setting(tuple(blend.weights), path + ("weights",))}
        label = blend.name or "+".join(f.stem for f in files)
        return _Column(tuple(files), label, weights) if ok else None

    def _resolve(self, path, columns, layers, grid) -> dict[tuple[int, int], RenderSettings]:
        """Settings for each (style column, sweep point); the ones that fail are reported."""
        settings: dict[tuple[int, int], RenderSettings] = {}
        for c, column in enumerate(columns):
            for g, (sweep_layer, _) in enumerate(grid):
                merged: Layer = {}
                for layer in [*layers, column.weights, sweep_layer]:
                    merged.update(layer)
                resolved = resolve_settings(merged, path, self.problems)
                if resolved is not None and self._blend_fits(resolved, column, merged, path):
                    settings[c, g] = resolved
        return settings

    def _build(self, path, contents, columns, settings, grid, template) -> list[tuple[RenderJob, Loc]]:
        """Rows are contents, columns are styles, then the sweep: the contact sheet's order."""
        jobs = []
        for content, (c, column), (g, (_, variant)) in itertools.product(
            contents, enumerate(columns), enumerate(grid)
        ):
            if (c, g) in settings:
                name = template or _default_name(variant)
                job = self._job(path, content, column, settings[c, g], variant, name)
                jobs += [(job, path)] if job else []
        return jobs

    def _blend_fits(self, settings: RenderSettings, column: _Column, merged: Layer, path: Loc) -> bool:
        if not column.files:
            return True
        try:
            settings.blend(len(column.files))
        except SettingsError as exc:
            origin = merged["style_blend"].path if "style_blend" in merged else path
            self.problems.add(origin, f"{exc.message} in '{column.label}'")
            return False
        return True

    def _job(self, path, content, column, settings, variant, template) -> RenderJob | None:
        styles = tuple(str(f) for f in column.files)
        try:
            job_id, digests = job_identity(str(content), styles, settings)
        except OSError as exc:  # gone since the folder was listed, or weights that cannot be read
            self.problems.add(path, f"cannot read '{exc.filename or 'a file'}': {exc.strerror or exc}")
            return None
        name = render_name(template, content.stem, column.label, variant)
        if not any(char.isalnum() for char in name):
            # Nothing readable, e.g. "{variant}" in an entry without a sweep: an
            # "x-<id>.png" would tell the user nothing, so use the default name.
            name = render_name(_default_name(variant), content.stem, column.label, variant)
        return RenderJob(
            job_id=job_id,
            content=str(content),
            styles=styles,
            settings=settings,
            output_name=f"{name}-{job_id}.png",
            content_label=content.stem,
            style_label=column.label,
            variant=variant,
            source=where(path),
            digests=digests,
        )


def _default_name(variant: str) -> str:
    return DEFAULT_NAME + ("--{variant}" if variant else "")


_EXPECTED = {
    "content": "an image file, folder or glob",
    "contents": "a list of image files, folders or globs",
    "style": "an image file, folder, glob or blend",
    "styles": "a list of image files, folders, globs or blends",
}


def _pick(entry: EntryModel, raw: dict, path: Loc, keys: tuple[str, str], bad: set[str], problems: Problems):
    """The usable (value, location) items of `content`/`contents` (or `style`/`styles`),
    and whether every item was usable. A bad item of a list was reported already;
    the others still come back, so their files get checked too."""
    one, many = keys
    given = [key for key in keys if raw.get(key) is not None]
    if len(given) == 2:
        problems.add(path, f"has both '{one}' and '{many}'; use one of them")
        return [], False
    if not given:
        empty = [key for key in keys if key in raw]  # written, but with no value
        if empty:
            problems.add(path + (empty[0],), f"expected {_EXPECTED[empty[0]]}, got nothing")
        else:
            problems.add(path, f"needs '{one}' (one image) or '{many}' (a list)")
        return [], False
    key = given[0]
    if key in bad:
        salvaged = salvage_items(EntryModel, many, raw[many]) if key == many and isinstance(raw[many], list) else []
        return [(item, path + (many, index)) for index, item in salvaged], False
    if key == one:
        return [(getattr(entry, one), path + (one,))], True
    if not isinstance(raw[many], list):  # a lone item written without brackets
        return [(getattr(entry, many)[0], path + (many,))], True
    return [(item, path + (many, index)) for index, item in enumerate(getattr(entry, many))], True


def _grid(axes: dict[str, list[Setting]]) -> list[tuple[Layer, str]]:
    """Every combination of the swept values (in the order written), with its label."""
    keys = list(axes)
    grid = []
    for combo in itertools.product(*(axes[key] for key in keys)):
        variant = ",".join(f"{k}={s.label or format_value(s.value)}" for k, s in zip(keys, combo))
        grid.append((dict(zip(keys, combo)), variant))
    return grid
