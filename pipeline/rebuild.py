"""`nst report OUTPUT_DIR`: rebuild the contact sheet from what is on disk."""

from __future__ import annotations

import json
from pathlib import Path

from nst_engine.settings import RenderSettings

from .errors import ManifestError, PipelineError
from .job_state import reconcile
from .jobs import RenderJob
from .lock import OutputLock
from .outputs import read_results, read_summary
from .reporter import write_contact_sheet


def _job_from_sidecar(data: dict) -> RenderJob:
    return RenderJob(
        job_id=data["job_id"],
        content=data["content"],
        styles=tuple(data["styles"]),
        settings=RenderSettings.from_dict(data["settings"]),
        output_name=data["output"],
        content_label=data.get("content_label") or Path(data["content"]).stem,
        style_label=data.get("style_label") or "+".join(Path(s).stem for s in data["styles"]),
        variant=data.get("variant", ""),
        source=data.get("source", ""),
    )


def _jobs_from_results(output_dir: Path, results: dict[str, dict]) -> list[RenderJob]:
    jobs = []
    for record in results.values():
        try:
            # A failed or interrupted job's line names no sidecar (null).
            data = json.loads((output_dir / (record.get("sidecar") or "-")).read_text())
        except (OSError, ValueError):
            data = dict(record)  # failed jobs have no sidecar; their line names the inputs
        try:
            data.setdefault("content_label", record.get("content_label"))
            data.setdefault("style_label", record.get("style_label"))
            data.setdefault("variant", record.get("variant", ""))
            jobs.append(_job_from_sidecar(data))
        except (AttributeError, TypeError, ValueError, KeyError):
            continue  # an older line without its inputs: only a manifest can place it
    return jobs


def rebuild_report(output_dir: Path, manifest=None, *, wait: bool = False) -> Path:
    """Rewrite index.html, holding the folder's lock as a render does: a running
    render rewrites the sheet as jobs finish, and the two would race for it."""
    if output_dir.is_file():  # e.g. the manifest, where the folder it renders into belongs
        raise PipelineError(f"{output_dir}: is a file, expected the output folder of a run")
    if not output_dir.is_dir():
        raise PipelineError(f"{output_dir}: no such output folder")
    if manifest is not None and manifest.output_dir.resolve() != output_dir.resolve():
        # Its jobs would lay out another gallery's sheet here, all pending.
        raise PipelineError(f"{output_dir}: {manifest.path.name} renders into {manifest.output_dir}, "
                            "not this folder; expected the manifest of this gallery")
    with OutputLock(output_dir, wait=wait):
        return _rebuild(output_dir, manifest)


def _rebuild(output_dir: Path, manifest) -> Path:
    results = read_results(output_dir)
    if manifest is not None:
        jobs = list(manifest.jobs)
    else:
        if not results:
            raise PipelineError(f"{output_dir}: no results.jsonl here; pass --manifest to lay out the sheet")
        jobs = _jobs_from_results(output_dir, results)
    # The sheet agrees with the plan: a complete output on disk is done (job_state).
    shown = reconcile(output_dir, jobs, results)
    return write_contact_sheet(output_dir, jobs, shown, title=_title(output_dir, manifest))


def _title(output_dir: Path, manifest) -> str:
    """The manifest's name, as a run titles its sheet: given, else the one the
    last run recorded in summary.json, else the folder's name."""
    if manifest is not None:
        return manifest.path.stem
    recorded = read_summary(output_dir).get("manifest")
    return (Path(recorded).stem if isinstance(recorded, str) else "") or output_dir.name


def recorded_manifest(output_dir: Path):
    """The manifest the folder's last run rendered (summary.json), loaded, so that
    `nst report OUT` lays out the sheet that run showed; with a note saying so.
    None with the reason when it is gone or renders elsewhere: the sheet then
    shows every job results.jsonl knows, stale settings included. A manifest
    that is there but no longer loads (a typo since) is an error instead: laid
    out from all of the folder's history, old failures and all, the sheet would
    no longer be the gallery's, and the fix is the user's to make."""
    from .manifest import load_manifest

    recorded = read_summary(output_dir).get("manifest")
    if not isinstance(recorded, str) or not recorded:
        return None, "laid out from results.jsonl: no run recorded its manifest here"
    name = Path(recorded).name
    fallback = "laid out from results.jsonl, every job rendered here"
    if not Path(recorded).is_file():
        return None, f"{fallback}: the last run's manifest {recorded} is gone"
    try:
        manifest = load_manifest(Path(recorded))
    except ManifestError as error:
        raise PipelineError(f"{output_dir}: the last run's manifest no longer loads ({str(error).splitlines()[0]}): "
                            "fix it, or pass --manifest; index.html is left as it was") from None
    if manifest.output_dir.resolve() != Path(output_dir).resolve():
        return None, f"{fallback}: {name} now renders into {manifest.output_dir}"
    return manifest, f"laid out from {name}, the last run's manifest (--manifest to choose another)"
