"""What manifest entries point at: settings layers and output names (image files: manifest_images.py).

Every function here reports problems into a `Problems` list and leaves out what
it reported, so one pass finds every mistake instead of stopping at the first.
"""

from __future__ import annotations

import os
import posixpath
import string
from pathlib import Path
from typing import Any, NamedTuple

from nst_engine.errors import SettingsError
from nst_engine.setting_checks import LARGEST_SIDE, to_float
from nst_engine.setting_values import BUILTIN_WEIGHTS, INIT_MODES
from nst_engine.settings import PRESETS, RenderSettings, setting_names

from .jobs import slug
from .manifest_images import IMAGE_SUFFIXES
from .outputs import THUMBS_DIR
from .value_words import show, unknown_name
from .yaml_lines import Loc, Problems

_DEFAULTS = RenderSettings()


class Setting(NamedTuple):
    """One override: the value to use, where it was written, and how to label it."""

    value: Any
    path: Loc
    label: str | None = None  # for a variant; None means "format the value"


Layer = dict[str, Setting]


def preset_layer(name: str | None, path: Loc, problems: Problems) -> tuple[Layer, bool]:
    """A named preset as overrides, and whether it exists (else a problem is reported)."""
    if name is None:
        return {}, True
    if name not in PRESETS:
        problems.add(path, unknown_name("preset", name, tuple(PRESETS)))
        return {}, False
    return {key: Setting(value, path) for key, value in PRESETS[name].items()}, True


def settings_layer(
    raw: dict[str, Any] | None, path: Loc, base: Path, problems: Problems
) -> tuple[Layer, bool]:
    """A `settings:` mapping as overrides (the usable keys), and whether all keys were usable."""
    layer: Layer = {}
    for key, value in (raw or {}).items():
        setting = _setting(key, value, path, path + (key,), base, problems)
        if setting is not None:
            layer[key] = setting
    return layer, len(layer) == len(raw or {})


def sweep_axes(
    raw: dict[str, Any] | None, path: Loc, base: Path, problems: Problems
) -> tuple[dict[str, list[Setting]], bool]:
    """A `sweep:` mapping as setting -> values (the usable ones), and whether all were usable."""
    axes: dict[str, list[Setting]] = {}
    ok = True
    for key, values in (raw or {}).items():
        if not isinstance(values, list) or not values:
            problems.add(path + (key,), f"expected a non-empty list of values to sweep, got {show(values)}")
            ok = False
            continue
        axis = [_setting(key, v, path, path + (key, i), base, problems) for i, v in enumerate(values)]
        usable = _first_of_each_value(key, axis, values, path, problems)
        ok = ok and len(usable) == len(axis)
        if usable:
            axes[key] = usable
    return axes, ok


def _first_of_each_value(key: str, axis: list[Setting | None], written: list, path: Loc,
                         problems: Problems) -> list[Setting]:
    """The usable values of one sweep axis; a value given twice (`1` and `1.0`
    are one value) is reported where it repeats, not later as two jobs writing
    one output."""
    usable: list[Setting] = []
    for index, setting in enumerate(axis):
        if setting is None:
            continue
        first = next((i for i, s in enumerate(axis[:index]) if s is not None and s.value == setting.value), None)
        if first is None:
            usable.append(setting)
        else:
            problems.add(path + (key, index), f"{_as_written(written[index])} repeats {key}[{first}] "
                         f"({_as_written(written[first])}); each value renders once, so give it once")
    return usable


def _as_written(value: Any) -> str:
    if isinstance(value, list):  # a list of scales
        return "[" + ", ".join(str(item) for item in value) + "]"
    return show(value)


def _keyword_hint(key: str, value: str) -> str:
    """`init: Noise` is a keyword in the wrong case, not a file that is missing."""
    words = INIT_MODES if key == "init" else BUILTIN_WEIGHTS
    if value.strip().lower() in words:
        return f" (did you mean '{value.strip().lower()}'?)"
    return f" (expected {' or '.join(words)}, or a file)"


def _setting(key: Any, value: Any, parent: Loc, path: Loc, base: Path, problems: Problems) -> Setting | None:
    names = setting_names()
    if key not in names:
        problems.add(parent, unknown_name("setting", str(key), names), line_path=parent + (key,))
        return None
    label = None
    if isinstance(getattr(_DEFAULTS, key), float) and _is_whole_number(value):
        # `1000` and `1000.0` are the same render, so they must make the same job id.
        value = to_float(value)
    elif key in ("init", "weights") and isinstance(value, str) and value not in INIT_MODES + BUILTIN_WEIGHTS:
        # A path, written relative to the manifest. Labels keep the short name.
        file = base / Path(os.path.expanduser(value))
        if not os.path.isfile(file):  # unlike Path.is_file, never raises (e.g. on EACCES)
            problems.add(path, f"no such file '{value}'{_keyword_hint(key, value)}")
            return None
        if key == "init" and file.suffix.lower() not in IMAGE_SUFFIXES:
            problems.add(path, f"'{value}' is not an image (expected {', '.join(IMAGE_SUFFIXES)})")
            return None
        if key == "weights" and not _looks_like_a_torch_file(file):
            problems.add(path, f"'{value}' is not a PyTorch weights file (expected a .pth saved by torch.save)")
            return None
        value, label = str(file.resolve()), file.stem
    problem = _problem_on_its_own(key, value)
    if problem is not None:  # reported, but kept: the jobs' check then judges the others as before
        message, part = problem
        problems.add(path, message, line_path=path + (part,) if part is not None else None)
    return Setting(value, path, label)


def _problem_on_its_own(key: str, value: Any) -> tuple[str, Any] | None:
    """What is wrong with one setting's value whatever the others are: (message,
    the list item or layer at fault). Checked where it is written, not only in
    the jobs it makes, since a value that every job overrides (a base `size:
    32px` above entries that each give a size) makes none and passed unseen."""
    context = {"size": LARGEST_SIDE} if key == "scales" else {}  # judged by the largest size allowed
    try:
        _DEFAULTS.with_overrides(**{**context, key: value})
    except SettingsError as exc:
        if exc.field == key:
            return exc.message, exc.part
    return None


def _looks_like_a_torch_file(file: Path) -> bool:
    """By its first bytes: torch.save writes a zip (since 1.6) or, before, a
    pickle (protocol 2 and up start with 0x80). Caught here, a wrong file is one
    line now, not a failed job for every job that uses it."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return True  # unreadable here: the render reports it with its own reason
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_settings(overrides: Layer, fallback: Loc, problems: Problems) -> RenderSettings | None:
    """Apply overrides to the defaults; report each bad one at the place it was written.

    RenderSettings stops at its first problem, so drop the culprit and retry until
    the rest is clean: the user then sees all of them in one go.
    """
    pending = dict(overrides)
    bad = False
    for _ in range(len(overrides) + 1):
        try:
            settings = _DEFAULTS.with_overrides(**{k: s.value for k, s in pending.items()})
            return None if bad else settings
        except SettingsError as exc:
            key, message, part = exc.field, exc.message, exc.part
        bad = True
        if key not in pending:
            problems.add(fallback, f"{key}: {message}")
            return None
        path = pending.pop(key).path
        # The line of the layer or scale at fault, where the setting spans several lines.
        problems.add(path, message, line_path=path + (part,) if part is not None else None)
        if key == "size":  # judge the scales by the largest size allowed, not by a default nobody wrote
            pending["size"] = Setting(LARGEST_SIDE, fallback)
    return None


_NAME_FIELDS = ("content", "style", "variant")


def check_name_template(template: str) -> str | None:
    """Why an output name template cannot be used, or None when it is fine."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"invalid name template {template!r}: {exc}"
    for _, field, spec, conversion in parts:
        if field is not None and field not in _NAME_FIELDS:
            return f"unknown field '{{{field}}}' in name (expected {{content}}, {{style}} or {{variant}})"
        if spec or conversion:
            return f"name fields take no format spec, got {template!r}"
    suffix = posixpath.splitext(template)[1].lower()
    if suffix in IMAGE_SUFFIXES and suffix != ".png":
        return f"outputs are PNG files named NAME-<job id>.png; leave '{suffix}' out of {template!r}"
    # Filled values are slugs (never "/" or ".."), so the template alone decides
    # where the file lands.
    filled = render_name(template, "x", "x", "x", keep_dots=True)
    shape = posixpath.normpath(filled)
    # A name that fills to nothing (".png", "./") takes the default name instead.
    if template.startswith("/") or shape == ".." or shape.startswith("../") or (shape == "." and filled.strip("./")):
        return f"name '{template}' must stay inside the output folder"
    if shape.split("/")[0].lower() == THUMBS_DIR:  # lower: a case-insensitive disk has one thumbs/
        return f"name '{template}' puts renders in '{THUMBS_DIR}/', where the contact sheet keeps its thumbnails"
    return None


# Characters kept of each label, and of each part of the filled name. A sweep's
# label is what tells its images apart, so it gets the most room: cut at 60, a
# three-setting sweep lost its last value from every name.
_FIELD_CHARS = {"content": 60, "style": 60, "variant": 120}
_NAME_CHARS = 150  # with "-<id>.png", within a file name's 255 bytes (jobs.slug)


def render_name(template: str, content: str, style: str, variant: str, keep_dots: bool = False) -> str:
    """Fill a checked template with slugged labels; "/" in the template makes subfolders.

    "" when nothing is left, e.g. `{variant}` for a job without a sweep.
    """
    if template.lower().endswith(".png"):
        # Every output is NAME-<job id>.png: "{content}.png" means "{content}".
        template = template[:-4]
    values = {"content": content, "style": style, "variant": variant}
    text = "".join(
        literal + (slug(values[field], _FIELD_CHARS[field]) if field and values[field] else "")
        for literal, field, _, _ in string.Formatter().parse(template)
    )
    if keep_dots:
        return text
    # A part with no letter or digit ("☆", "_") would become a meaningless "x".
    segments = [s for s in posixpath.normpath(text).split("/") if any(c.isalnum() for c in s)]
    # Never a leading "-": `ls *.png` or `cp *.png` would read "--help--starry-….png" as an option.
    return "/".join(slug(s, _NAME_CHARS).lstrip("-._") for s in segments)
