"""What a Dask run shows while its tasks render: which worker started which
job, and how far each has got, as a local run shows for its worker processes.

Each task notes its start, and at most once a second its progress, on the
scheduler's event log (cluster_task). This process subscribes to those topics.
The handlers run on the Dask client's own thread, so they only queue the
notes; the run's thread hands them to the display and the log (`deliver`).

A job that starts a second time in a round is one whose worker left the
cluster (killed, crashed, lost): Dask runs its task again elsewhere, and the
log says so, as a local run logs a worker that died under a job.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Container, Mapping
from typing import Any

from .display import job_name
from .events import Listener
from .jobs import RenderJob

log = logging.getLogger("nst")


class ClusterProgress:
    """One per run: a Dask worker keeps its slot number across rounds."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._notes: queue.SimpleQueue = queue.SimpleQueue()
        self._slots: dict[str, int] = {}  # worker address -> slot, in order of first note
        self._topics: dict[str, str] = {}  # topic -> "start" or "progress"
        self._started_on: dict[str, str] = {}  # job id -> the worker it last started on, this round
        self._started_at: dict[str, float] = {}  # job id -> when that start was delivered (monotonic)
        self._starts: dict[str, int] = {}  # job id -> how many times it started this round

    def follow(self, client, channel) -> None:
        """Subscribe to a round's topics (each round has its own channel)."""
        # A round submits its jobs afresh (after KilledWorker, joblib dropped
        # the others, whose workers may be fine): a start there is no restart.
        self._started_on.clear()
        self._started_at.clear()
        self._starts.clear()
        for topic, kind in ((channel.start_topic, "start"), (channel.progress_topic, "progress")):
            self._topics[topic] = kind
            client.subscribe_topic(topic, lambda event, topic=topic: self._notes.put((topic, event[1])))

    def unfollow(self, client) -> None:
        for topic in self._topics:
            with contextlib.suppress(Exception):  # the scheduler may be gone: nothing to undo there
                client.unsubscribe_topic(topic)
        self._topics.clear()

    def started(self) -> set[str]:
        """The ids of the jobs that started this round."""
        return set(self._started_on)

    def attempts(self, job_id: str) -> int:
        """How many times this round ran the job: a restart after its worker
        left counts, as a local run counts its retry after a worker died."""
        return max(1, self._starts.get(job_id, 0))

    def running_longer_than(self, seconds: float, reported: Container[str]) -> dict[str, str]:
        """The jobs of this round started over `seconds` ago and not yet
        `reported`, each with the worker it runs on."""
        now = time.monotonic()
        return {job_id: self._started_on[job_id] for job_id, began in self._started_at.items()
                if now - began > seconds and job_id not in reported}

    def deliver(self, jobs: Mapping[str, RenderJob], reported: Container[str]) -> None:
        """Hand the queued notes to the listener; call from the run's thread.
        Notes about jobs already `reported` came late, and are dropped."""
        while True:
            try:
                topic, note = self._notes.get_nowait()
            except queue.Empty:
                return
            kind = self._topics.get(topic)
            if kind is None or not isinstance(note, dict):  # an earlier round's, come late: its tasks were dropped
                continue
            ids = note.get("jobs") if kind == "start" else note.get("job_ids")
            known = [jobs[job_id] for job_id in ids or () if job_id in jobs and job_id not in reported]
            if not known:
                continue
            slot = self._slot(note)
            if kind == "start":
                self._warn_of_restarts(known, str(note.get("worker", "a Dask worker")))
                self._listener.on_start(slot, known)
            else:
                self._listener.on_progress(slot, _progress_event(note))

    def _warn_of_restarts(self, jobs: list[RenderJob], worker: str) -> None:
        for job in jobs:
            before = self._started_on.get(job.job_id)
            self._started_on[job.job_id] = worker
            self._started_at[job.job_id] = time.monotonic()  # a restart starts its clock again
            self._starts[job.job_id] = self._starts.get(job.job_id, 0) + 1
            if before is not None:
                log.warning("%s started again on %s: the worker that ran it (%s) left the cluster",
                            job_name(job), worker, before)

    def _slot(self, note: dict[str, Any]) -> int:
        worker = str(note.get("worker", "a Dask worker"))
        if worker not in self._slots:
            self._slots[worker] = len(self._slots)
            info = {"pid": note.get("pid"), "device_name": note.get("host")}
            self._listener.on_worker(self._slots[worker], worker, info)
        return self._slots[worker]


def _progress_event(note: dict[str, Any]) -> dict[str, Any]:
    """The local worker's progress event, as the display reads it."""
    keys = ("job_ids", "done", "total", "stage", "stages", "losses")
    return {key: note[key] for key in keys if key in note}
