"""Two jobs of a manifest with one job id: a byte-for-byte copy, or a mistake.

The job id hashes file bytes and settings, not names, so two jobs with one id
render the same image. Two cases are no mistake, and the job renders once, with
a notice: a file that is a copy of another (a photo folder's "IMG_1 (1).jpg"),
and two entries that ask for the very same job under the very same name (a
folder and a glob that both reach a photo moved in later). The same image under
two names is an error: only the user can say which name they want.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from nst_engine.setting_values import BUILTIN_WEIGHTS, INIT_MODES

from .jobs import RenderJob
from .yaml_lines import Loc, Problems

# Copy notes listed before the rest are counted in one line: a folder of 340
# copies printed 340 lines in every plan and every night's log.
COPY_NOTES = 5


class Deduplicated(NamedTuple):
    jobs: list[RenderJob]  # each once, in manifest order
    notices: list[str]  # one per pair of entries that ask for the same jobs
    copies: list[str]  # one per file that copies another: "b.jpg has the same bytes as a.jpg: …"


def drop_duplicates(built: list[tuple[RenderJob, Loc]], problems: Problems, base: Path,
                    rendered: Callable[[RenderJob], bool] = lambda job: False) -> Deduplicated:
    """The jobs, each once. One render asked for twice under one name is kept
    once, from the first entry; under two names it is a problem. One render
    reached through byte-for-byte copies is kept once: under the name it was
    `rendered` under already, else from the files a person would call the
    originals (see `_preference`)."""
    by_id: dict[str, list[int]] = {}
    for index, (job, _) in enumerate(built):
        by_id.setdefault(job.job_id, []).append(index)
    # (later entry, earlier entry) -> the later entry's jobs that the earlier one makes already
    asked_again: dict[tuple[str, str], list[RenderJob]] = defaultdict(list)
    # The same image under two names, grouped by _clash_key: one line however
    # many photos of a folder the clash repeats over.
    clashes: dict[tuple, list[tuple[RenderJob, RenderJob]]] = defaultdict(list)
    candidates: list[list[int]] = []  # per job id: one job per set of files, as indexes into built
    for indexes in by_id.values():
        # Jobs of one id that read the same files are one render asked for twice;
        # the others differ only in a file that copies another.
        first_of: dict[tuple, int] = {}
        for index in indexes:
            job, path = built[index]
            first = first_of.setdefault((_files(job), job.settings), index)
            if first == index:
                continue
            other = built[first][0]
            if job.output_name == other.output_name:
                asked_again[job.source, other.source].append(job)
            else:
                clashes[_clash_key(job, path, other)].append((job, other))
        candidates.append(list(first_of.values()))
    # A file with renders already made under its name stays the original for all
    # its jobs: a copy added later under a shorter name ("a.jpg") must neither
    # rename those renders nor take the photo's jobs still to do (two rows).
    made = {file for group in candidates if len(group) > 1 for index in group
            if rendered(built[index][0]) for file in _files(built[index][0])}
    kept: set[int] = set()
    copies: list[tuple[int, int]] = []  # (dropped, kept), as indexes into built
    for group in candidates:
        # Else not the first in manifest order: a folder lists "IMG_1 (1).jpg" before "IMG_1.jpg".
        winner = min(group, key=lambda index: (
            sum(file not in made for file in _files(built[index][0])), _preference(built[index][0])))
        kept.add(winner)
        copies += [(index, winner) for index in group if index != winner]
    for (path, *_), pairs in clashes.items():
        _report_clash(path, pairs, problems)
    # One line per pair of entries: a folder of 500 photos that a glob also
    # reaches would otherwise print 500 lines that all say the same thing.
    notices = [_asked_again_notice(later, earlier, jobs) for (later, earlier), jobs in asked_again.items()]
    jobs = [job for index, (job, _) in enumerate(built) if index in kept]
    return Deduplicated(jobs, notices, _copy_notes(copies, built, base))


def _copy_notes(copies: list[tuple[int, int]], built: list[tuple[RenderJob, Loc]], base: Path) -> list[str]:
    """A note per file whose jobs were dropped for the original's, in manifest order."""
    notes: dict[str, None] = {}  # a dict for its order: a copy used by many jobs is noted once
    for dropped, winner in sorted(copies):
        for copy, original in _copied_files(built[dropped][0], built[winner][0]):
            notes[f"{_shown(copy, base)} has the same bytes as {_shown(original, base)}: "
                  f"its jobs render once, as {Path(original).stem}"] = None
    return list(notes)


def shown_copy_notes(copies: Sequence[str], every: bool = False) -> list[str]:
    """The copy notes to print: every one, or the first COPY_NOTES and a line
    counting the rest (never a line that counts just one: it takes a line too)."""
    if every or len(copies) <= COPY_NOTES + 1:
        return list(copies)
    rest = len(copies) - COPY_NOTES
    return [*copies[:COPY_NOTES], f"and {rest} more files copy others; `nst plan --all` lists every one"]


def _asked_again_notice(later: str, earlier: str, jobs: list[RenderJob]) -> str:
    first = jobs[0]
    example = f"{first.content_label} × {first.style_label}" + (f" with {first.variant}" if first.variant else "")
    if len(jobs) == 1:
        return f"{later} asks again for a job that {earlier} already makes ({example}); it renders once"
    return f"{later} asks again for {len(jobs)} jobs that {earlier} already makes (e.g. {example}); each renders once"


def _clash_key(job: RenderJob, path: Loc, other: RenderJob) -> tuple:
    """Clashes that one fix answers, reported as one line: one sweep point of
    this entry, or this entry against one job of the other (and its sweep point)."""
    if _sweep_point(job, other):
        return (path, other.source, "point", job.variant)
    return (path, other.source, "name", other.variant)


def _sweep_point(job: RenderJob, other: RenderJob) -> bool:
    """The usual clash: a sweep through the default value of a pair the grid
    already has. The fix is to drop that value, so say which, where it is."""
    return bool(job.variant) and not other.variant


def _report_clash(path: Loc, pairs: list[tuple[RenderJob, RenderJob]], problems: Problems) -> None:
    """Renders asked for under two names: the count, and the first as an example.
    Naming only this job's file would point at a file the other entry does not
    make, so both names are given."""
    job, other = pairs[0]
    made_by = other.source + (f" with {other.variant}" if other.variant else "")
    what = f"{job.content_label}, {job.style_label}, same settings"
    many = len(pairs) > 1
    if _sweep_point(job, other):
        if many:
            repeated = (f"renders {len(pairs)} images that {made_by} also renders "
                        f"(e.g. {what}, which {made_by} makes as '{_name(other)}')")
        else:
            repeated = f"renders the same image as {made_by} ({what}), which makes it as '{_name(other)}'"
        problems.add(path + ("sweep",), f"the point {job.variant} {repeated}; leave that value out of the sweep")
        return
    names = f"'{_name(job)}', not '{_name(other)}'"
    if job.source == other.source:  # two blends of one entry, named apart
        problems.add(path, f"its blends '{other.style_label}' and '{job.style_label}' mix the same styles with the "
                           f"same weights: one image under two names ('{_name(other)}' and '{_name(job)}'); "
                           "give the blend once")
        return
    fix = (f"leave {other.variant} out of {other.source}'s sweep, or this entry out" if other.variant
           else f"give {'them' if many else 'it'} once")
    if many:
        problems.add(path, f"renders {len(pairs)} images that {made_by} also renders, under other names "
                           f"(e.g. {what}: {names}); {fix}")
    else:
        problems.add(path, f"renders the same image as {made_by} ({what}) under another name ({names}); {fix}")


def _name(job: RenderJob) -> str:
    """The output name as the template made it, without "-<job id>.png"."""
    return job.output_name.removesuffix(f"-{job.job_id}.png")


def _preference(job: RenderJob) -> tuple[tuple[int, str, str], ...]:
    """Orders jobs of one id by their files, most original first: a copy's name
    adds to the original's ("IMG_1 (1).jpg", "IMG_1 copy.jpg", "Copy of IMG_1.jpg"),
    so the shortest file name wins, then the first alphabetically, then the
    path, which decides for any two files. Names only, so every run and machine
    agrees; a modification time would not survive a copy or a git checkout."""
    return tuple((len(Path(file).name), Path(file).name, file) for file in _files(job))


def _files(job: RenderJob) -> tuple[str, ...]:
    """Every file whose bytes make up the job id: content, styles, an init image, a weights file."""
    named = [value for value in (job.settings.init, job.settings.weights)
             if value not in INIT_MODES + BUILTIN_WEIGHTS]
    return (job.content, *job.styles, *named)


def _copied_files(job: RenderJob, other: RenderJob) -> list[tuple[str, str]]:
    """(file of job, file of other) for each input the two name differently."""
    return [(mine, theirs) for mine, theirs in zip(_files(job), _files(other)) if mine != theirs]


def _shown(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path
