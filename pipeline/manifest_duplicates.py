"""Two jobs of a manifest with one job id: a byte-for-byte copy, or a mistake.

The job id hashes file bytes and settings, not names, so two jobs with one id
render the same image. Where a file is a copy of another (a photo folder's
"IMG_1 (1).jpg") that is no mistake: the job renders once, with a notice.
"""

from __future__ import annotations

from pathlib import Path

from .jobs import RenderJob
from .yaml_lines import Loc, Problems


def drop_duplicates(built: list[tuple[RenderJob, Loc]], problems: Problems, notices: list[str],
                     base: Path) -> list[RenderJob]:
    """The jobs, each once. Two jobs with one output are a problem, except when
    the only difference is a file that is a byte-for-byte copy of another (a
    photo folder's "IMG_1 (1).jpg"): the job id hashes the bytes, so the copy
    would render the same image again; it is left out with a notice."""
    first: dict[str, RenderJob] = {}
    kept: list[RenderJob] = []
    for job, path in built:
        other = first.get(job.job_id) or first.get(job.output_name)
        if other is None:
            first[job.job_id] = first[job.output_name] = job
            kept.append(job)
            continue
        copies = _copied_files(job, other)
        if other.job_id == job.job_id and copies:
            for copy, original in copies:
                notice = (f"{_shown(copy, base)} has the same bytes as {_shown(original, base)}: "
                          f"its jobs render once, as {Path(original).stem}")
                if notice not in notices:
                    notices.append(notice)
            continue
        made_by = other.source + (f" with {other.variant}" if other.variant else "")
        problems.add(path, f"duplicate output '{job.output_name}' (also made by {made_by})")
    return kept


def _copied_files(job: RenderJob, other: RenderJob) -> list[tuple[str, str]]:
    """(file of job, file of other) for each input the two name differently."""
    pairs = list(zip((job.content, *job.styles), (other.content, *other.styles)))
    return [(mine, theirs) for mine, theirs in pairs if mine != theirs]


def _shown(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path
