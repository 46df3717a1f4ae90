"""Read a YAML manifest, check all of it, and expand it into frozen RenderJobs.

Checking is strict and complete: every problem in the file is reported at once,
each as `file:line: where: message`, so one edit fixes them all. Nothing here
renders or imports torch; the manifest only names files and settings.

Settings precedence, lowest first: RenderSettings defaults < top `preset` <
top `settings` < entry `preset` < entry `settings` < blend `weights` < sweep values
(see manifest_expand.py).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ManifestError, Problem
from .jobs import RenderJob
from .manifest_duplicates import shown_copy_notes
from .manifest_expand import Expander
from .manifest_images import OutputFolder
from .manifest_schema import TopModel, validate_model
from .run_values import parse_devices
from .yaml_lines import ParsedYaml, Problems, YamlSyntaxError, parse_yaml

__all__ = ["Manifest", "ManifestError", "RunOptions", "load_manifest", "parse_devices", "resolve_manifest_path"]


@dataclass(frozen=True)
class RunOptions:
    """How to run a manifest. Not part of any job id: it never changes the pixels."""

    devices: tuple[str, ...] | None = None
    cluster: str | None = None
    job_timeout: float | None = None  # seconds
    batch_size: int | None = None
    checkpoint_every: int | None = None  # iterations


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: where it is, where its outputs go, and every job it asks for."""

    path: Path  # absolute
    output_dir: Path  # absolute
    jobs: tuple[RenderJob, ...]  # in manifest order
    run: RunOptions
    notices: tuple[str, ...] = ()  # warnings about the manifest, e.g. images in the output folder left out
    copies: tuple[str, ...] = ()  # a notice per file that copies another; shown_notices caps them
    output_line: int | None = None  # the line of `output:`, for errors about the folder; None: default
    devices_line: int | None = None  # the line of `run.devices`, for errors about the devices it names
    cluster_line: int | None = None  # the line of `run.cluster`, for errors about the scheduler it names

    def shown_notices(self, every: bool = False) -> list[str]:
        """The notices to print: all of them, then the copy notes, all of them
        with `every`, else the first few and a line counting the rest."""
        return [*self.notices, *shown_copy_notes(self.copies, every)]

    def output_problem(self, message: str) -> Problem:
        """A problem with the output folder, pinned to `output:` when the manifest names it."""
        return Problem(self.path.name, self.output_line, "output" if self.output_line else "", message)

    def devices_source(self) -> str:
        """How errors name the manifest's `run.devices`: `gallery.yaml:9: run.devices`."""
        return str(Problem(self.path.name, self.devices_line, "run.devices", "")).rstrip(": ")

    def cluster_source(self) -> str:
        """How errors name the manifest's `run.cluster`: `gallery.yaml:10: run.cluster`."""
        return str(Problem(self.path.name, self.cluster_line, "run.cluster", "")).rstrip(": ")


def resolve_manifest_path(name: str, manifests_dir: Path) -> Path:
    """A path that exists as given, else a bare name (`demo`, `gallery.yaml`):
    `gallery.yaml` or `.yml` here, then in `manifests_dir` (the bundled ones)."""
    given = Path(os.path.expanduser(name))
    if os.path.isfile(given):
        return given
    if len(given.parts) == 1:
        has_suffix = given.suffix in (".yaml", ".yml")
        for folder in (Path(), Path(manifests_dir)):
            for option in [name] if has_suffix else [name, f"{name}.yaml", f"{name}.yml"]:
                if os.path.isfile(folder / option):
                    return folder / option
    if os.path.isdir(given):
        raise ManifestError([Problem(name, None, "", "is a folder, expected a manifest (.yaml file)")])
    message = f"no such manifest '{name}'"
    if len(given.parts) == 1:
        wanted = name if given.suffix in (".yaml", ".yml") else f"{name}.yaml"
        message += f" (looked for {wanted} here and in {manifests_dir})"
    raise ManifestError([Problem(given.name or name, None, "", message)])


def load_manifest(path: str | Path) -> Manifest:
    """Parse, check and expand a manifest. Raises ManifestError listing every problem."""
    path = Path(os.path.abspath(os.path.expanduser(path)))
    parsed = _parse(path)
    problems = Problems(path.name, parsed.lines)
    for parent, key, first_line in parsed.duplicate_keys:
        problems.add(parent, f"duplicate key '{key}' (first on line {first_line})", parent + (key,))
    data = parsed.data
    if not isinstance(data, dict):
        got = "is empty" if data is None else f"is {_kind(data)}"
        problems.add((), f"the top level {got}; expected a mapping with at least a 'jobs' list")
        raise ManifestError(problems.sorted())
    # Like docker compose, top-level keys starting with "x-" are free: a place for YAML anchors.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    top, bad = validate_model(TopModel, data, (), problems, salvage=True)
    if not isinstance(top, TopModel):  # salvage drops every bad key, so this is a safety net
        raise ManifestError(problems.sorted())
    output = top.output or f"out/{path.stem}"
    outputs = OutputFolder((path.parent / os.path.expanduser(output)).resolve(), output)
    trusted = not bad & {"preset", "settings", "sweep"}
    expander = Expander(path.parent, problems, top, trusted, outputs)
    jobs = expander.expand(_entries(data, top, bad, problems))
    if problems:
        raise ManifestError(problems.sorted())
    run = top.run.model_dump() if top.run else {}
    return Manifest(
        path=path,
        output_dir=outputs.path,
        jobs=tuple(jobs),
        run=RunOptions(**run),
        notices=tuple(expander.notices),
        copies=tuple(expander.copies),
        output_line=parsed.lines.lines.get(("output",)) if top.output else None,
        devices_line=parsed.lines.lines.get(("run", "devices")),
        cluster_line=parsed.lines.lines.get(("run", "cluster")),
    )


def _parse(path: Path) -> ParsedYaml:
    def fail(message: str, line: int | None = None) -> ManifestError:
        return ManifestError([Problem(path.name, line, "", message)])

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail(f"no such manifest '{path}'") from None
    except IsADirectoryError:
        raise fail(f"'{path}' is a folder, not a manifest") from None
    except UnicodeDecodeError as exc:
        # The line, so that a long manifest saved once as Latin-1 says where to look.
        line = exc.object[: exc.start].count(b"\n") + 1
        raise fail(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", line) from None
    except OSError as exc:
        raise fail(f"cannot read the manifest: {exc.strerror or exc}") from None
    try:
        return parse_yaml(text)
    except YamlSyntaxError as exc:
        raise fail(f"invalid YAML: {exc.message}", exc.line) from None


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"a single value ({value!r})"


def _entries(data: dict[str, Any], top: TopModel, bad: set[str], problems: Problems) -> list[Any]:
    if "jobs" not in data:
        # `job:` is already "unknown key 'job' (did you mean 'jobs'?)": one mistake, one line.
        if not any(difflib.get_close_matches(str(key), list(TopModel.model_fields), n=1) == ["jobs"] for key in data):
            problems.add((), "missing required key 'jobs' (a list of content/style entries)")
    elif "jobs" in bad:
        pass  # already reported
    elif top.jobs is None:
        problems.add(("jobs",), "expected a list of job entries, got nothing")
    elif not top.jobs:
        problems.add(("jobs",), "must list at least one job")
    return top.jobs or []
