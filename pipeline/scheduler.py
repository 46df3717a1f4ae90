"""A pure plan and the batching rules; the executors only carry it out.

`plan()` is deterministic and cheap, so `nst plan` and `--dry-run` print exactly
what `nst render` will do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from nst_engine.settings import batch_signature

from .jobs import RenderJob

# On a GPU the worker reports how many pixels fit; this caps a batch regardless.
DEFAULT_BATCH_CAP = 8


@dataclass(frozen=True)
class Plan:
    todo: tuple[RenderJob, ...]  # in the order workers should take them
    done: tuple[RenderJob, ...]  # outputs already complete (skipped)

    def with_done(self, job_ids: Iterable[str]) -> Plan:
        """This plan with the jobs to do named by `job_ids` counted as done."""
        ids = set(job_ids)
        return Plan(todo=tuple(job for job in self.todo if job.job_id not in ids),
                    done=self.done + tuple(job for job in self.todo if job.job_id in ids))


def plan(jobs: Iterable[RenderJob], is_done: Callable[[RenderJob], bool]) -> Plan:
    """Skip finished jobs; order the rest largest first, grouped by style.

    Grouping by style means a worker that has a style's Gram matrices warm
    usually finds its next job in the same group; largest-first keeps a long
    job from being the last thing running at dawn.
    """
    jobs = list(jobs)
    done = tuple(job for job in jobs if is_done(job))
    finished = {job.job_id for job in done}
    todo = [job for job in jobs if job.job_id not in finished]
    first_seen: dict[tuple[str, ...], int] = {}
    largest: dict[tuple[str, ...], int] = {}
    position = {job.job_id: index for index, job in enumerate(todo)}
    for job in todo:
        first_seen.setdefault(job.styles, position[job.job_id])
        largest[job.styles] = max(largest.get(job.styles, 0), job.pixels)
    todo.sort(
        key=lambda job: (
            -largest[job.styles],
            first_seen[job.styles],
            -job.pixels,
            job.content,
            position[job.job_id],  # the manifest's order: a sweep 1, 2, 10 stays 1, 2, 10
        )
    )
    return Plan(tuple(todo), done)


def can_share_batch(a: RenderJob, b: RenderJob) -> bool:
    """Same content file (so the same size) and the same shared settings."""
    return a.content == b.content and batch_signature(a.settings) == batch_signature(b.settings)


def next_batch(
    pending: Sequence[RenderJob],
    held_styles: Iterable[str],
    *,
    batch_cap: int,
    max_batch_pixels: int,
    workers: int = 1,
) -> list[RenderJob]:
    """The jobs to hand an idle worker next: a style it holds if possible, then
    as many compatible jobs as the cap, the device's memory and a fair share
    of the work left allow.

    The fair share (the pending jobs over the `workers` that can take them)
    keeps every device busy: without it the first GPU to ask took a whole
    content's 8 jobs as one batch, and on an 8-GPU server the 21 jobs of the
    sample gallery went to 4 cards while 4 stood idle. A batch at most saves
    time on one device; an idle device loses all of its.
    """
    if not pending:
        return []
    held = set(held_styles)
    first = next((job for job in pending if set(job.styles) <= held), pending[0])
    batch = [first]
    fair_share = -(-len(pending) // max(1, workers))  # ceil
    room = min(_images_that_fit(first, batch_cap, max_batch_pixels), fair_share)
    for job in pending:
        if len(batch) >= room:
            break
        if job is not first and can_share_batch(first, job):
            batch.append(job)
    return batch


def _images_that_fit(job: RenderJob, batch_cap: int, max_batch_pixels: int) -> int:
    if max_batch_pixels <= 0:
        return 1
    per_image = job.settings.size**2  # the longest side squared bounds the real area
    return max(1, min(batch_cap, max_batch_pixels // per_image))
