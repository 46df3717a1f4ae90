"""What a job's cell on the sheet shows: its latest line in results.jsonl, unless
the output on disk says otherwise.

The plan trusts the disk: a job whose PNG and sidecar are whole and name it
(outputs.output_is_complete) is done and is skipped, whatever results.jsonl says.
The sheet, summary.json and `nst report` must tell the same story, or a night
ends with "nothing to render" above a cell that stays failed or pending forever.
The two part ways when
- a `--force` re-render failed or was interrupted: its line is the latest, but
  the earlier image is intact and still up to date (same job id, so the same
  inputs and settings);
- a job's line was lost (a crash between writing the image and appending the
  line, a hand-edited file): results.jsonl does not know the job at all;
- the output's name changed and renames.py moved the image: the latest line
  names the old file.
In each the job is done, and its cell is rebuilt from its sidecar, which holds
the settings, losses, timings and device of the render that made the image.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .jobs import RenderJob, weights_identity
from .outputs import complete_sidecar

RECOVERED_FROM = "sidecar"  # the `recovered_from` of a record rebuilt from the disk


def job_fields(job: RenderJob) -> dict[str, Any]:
    """The job's inputs, on every line: a failed job has no sidecar, and `nst
    report` must still be able to place it on the sheet from its line alone."""
    return {
        "output": job.output_name,
        "content": job.content,
        "styles": list(job.styles),
        "source": job.source,
        "content_label": job.content_label,
        "style_label": job.style_label,
        "variant": job.variant,
        "settings": job.settings.to_dict(),
    }


def sidecar_job_fields(job: RenderJob) -> dict[str, Any]:
    """What a sidecar says of the job itself: its inputs and output as the
    manifest names them now. Written with the image, and again when renames.py
    moves it: a renamed photo keeps its bytes, so its job keeps its id and its
    image, and the sidecar must name the file as it is called now."""
    return {
        "job_id": job.job_id,
        "source": job.source,
        "content": job.content,
        "styles": list(job.styles),
        "output": job.output_name,
        "settings": job.settings.to_dict(),  # an init image or a .pth file is a path here too
        "seed": job.settings.seed,
        "weights": weights_identity(job.settings.weights),
        # The bytes each input had: a photo replaced under its own name leaves
        # sidecars that name one path for different pictures.
        "input_sha256": dict(job.digests),
    }


def sidecar_contents(job: RenderJob, record: dict[str, Any], *, manifest: str,
                     versions: dict[str, Any]) -> dict[str, Any]:
    """The sidecar written next to a done job's image, from its result `record`."""
    stats = record.get("stats", {})
    return {
        **sidecar_job_fields(job),
        "manifest": manifest,
        "effective": record.get("effective") or {},
        "versions": versions,
        "device": record.get("device"),
        "device_name": record.get("device_name"),
        "worker_pid": record.get("worker_pid"),
        # Where it rendered: a Dask task's machine, else this one.
        "host": record.get("host") or platform.node(),
        **({"dask_worker": record["dask_worker"]} if record.get("dask_worker") else {}),
        "attempts": record.get("attempts", 1),
        "memory_fallback": record.get("memory_fallback"),
        "resumed_from_iteration": stats.get("resumed_from", 0),
        # Losses, cache hits and seconds are said once, in `stats`, where the
        # sheet and a results line rebuilt from this file (job_state) read them.
        "stats": stats,
        "finished_at": record["finished_at"],
    }


def effective_values(stats: Mapping[str, Any]) -> dict[str, Any]:
    """What the render really used where a setting means "automatic" (0 or []):
    the engine's learning rate and the longest side of each stage. Kept out of
    `settings`, which is the job's identity (its id hashes them)."""
    effective = {}
    if isinstance(stats.get("learning_rate"), (int, float)):
        effective["learning_rate"] = stats["learning_rate"]
    if isinstance(stats.get("schedule"), list):
        effective["scales"] = stats["schedule"]
    return effective


def done_from_disk(output_dir: Path, job: RenderJob) -> dict[str, Any] | None:
    """A `done` record rebuilt from the job's sidecar if its output is complete, else None."""
    sidecar = complete_sidecar(output_dir, job)
    if sidecar is None:
        return None
    stats = sidecar.get("stats") if isinstance(sidecar.get("stats"), dict) else {}
    record = {
        "job_id": job.job_id,
        "status": "done",
        "device": sidecar.get("device"),
        "device_name": sidecar.get("device_name"),
        "worker_pid": sidecar.get("worker_pid"),
        "host": sidecar.get("host"),
        "dask_worker": sidecar.get("dask_worker"),
        "attempts": sidecar.get("attempts", 1),
        "memory_fallback": sidecar.get("memory_fallback"),
        "stats": stats,
        **job_fields(job),
        "sidecar": job.sidecar_name,
        "finished_at": sidecar.get("finished_at"),
        "recovered_from": RECOVERED_FROM,
    }
    if sidecar.get("renamed_from"):  # renames.py moved it here from an older name
        record["renamed_from"] = sidecar["renamed_from"]
    effective = sidecar.get("effective") or effective_values(stats)
    if effective:
        record["effective"] = effective
    return record


def shown_record(output_dir: Path, job: RenderJob, latest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record the sheet shows for `job`, given its latest line (or None)."""
    if latest is not None and latest.get("status") == "done" and latest.get("output") == job.output_name:
        if _both_files_there(output_dir, job):
            return latest  # trusted without reading the image: the plan checks it whole
        # Deleted by hand: the plan renders it again (`redo`), so it is no longer done.
        # An `--only` run or `nst report` that leaves it alone must not count it done.
        return None
    on_disk = done_from_disk(output_dir, job)
    if on_disk is None:
        return latest
    if latest is not None and latest.get("status") != "done":
        # The newer attempt that did not replace the image stays visible in the details.
        # A `done` line naming another file is no such attempt: it is this image's own
        # render, under the name it had before renames.py moved it. Nothing re-rendered.
        on_disk["last_rerender"] = {k: latest.get(k) for k in ("status", "error", "finished_at")}
    return on_disk


def _both_files_there(output_dir: Path, job: RenderJob) -> bool:
    """Two stats, no reads: what the sheet can afford for every job of a big gallery."""
    return (output_dir / job.output_name).is_file() and (output_dir / job.sidecar_name).is_file()


def reconcile(output_dir: Path, jobs: Iterable[RenderJob], results: Mapping[str, dict]) -> dict[str, dict]:
    """`results` (latest line per job id) with each of `jobs` shown as the disk says.

    Only jobs whose latest line is not a `done` naming their current file are
    read from disk; the rest are only checked to still have their image and
    sidecar, so a finished gallery costs no image reads."""
    shown = dict(results)
    for job in jobs:
        record = shown_record(output_dir, job, results.get(job.job_id))
        if record is None:
            shown.pop(job.job_id, None)  # pending: never rendered, or its image deleted since
        else:
            shown[job.job_id] = record
    return shown
