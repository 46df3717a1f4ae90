"""When the parent stops a busy worker for taking too long: `job_timeout` per job
of the batch it holds. The decision is tested against a stand-in worker whose
clock the test sets; test_batching_and_stop runs the real thing."""

from __future__ import annotations

import pytest

from pipeline.local_executor import LocalExecutor


class _ClockedWorker:
    """What _supervise reads of a WorkerHandle, with a busy time the test chooses."""

    def __init__(self, jobs: list[str], seconds: float) -> None:
        self.held, self.assigned, self.seconds = list(jobs), len(jobs), seconds
        self.slot, self.device, self.alive, self.retired, self.killed = 0, "cuda:0", True, False, False
        self.starts_without_progress = 0

    @property
    def busy(self) -> bool:
        return bool(self.held)

    def busy_seconds(self) -> float:
        return self.seconds

    def kill(self) -> list[str]:
        self.killed = True
        held, self.held = self.held, []
        return held

    def shutdown(self) -> None:
        pass

    def retire(self) -> None:
        self.retired = True


class _Closed(LocalExecutor):
    """An executor that records what it fails, and restarts no real process."""

    def __init__(self, job_timeout: float | None) -> None:
        super().__init__(["cuda:0"], options=None, job_timeout=job_timeout)
        self.failed: dict[str, str] = {}
        self._pending = ["a job still to hand out"]  # so a stopped worker is replaced

    def _close(self, job, reason):
        self.failed[job] = reason

    def _discard_partial_checkpoints(self, worker, jobs):
        pass

    def _start(self, slot, device):
        return _ClockedWorker([], 0.0)


@pytest.mark.parametrize(("jobs", "seconds", "stopped"), [
    (["a"], 9.0, False),
    (["a"], 11.0, True),
    (["a", "b", "c"], 29.0, False),  # three images side by side: 3 × 10 s between them
    (["a", "b", "c"], 31.0, True),
])
def test_a_batch_gets_job_timeout_for_each_of_its_jobs(jobs, seconds, stopped):
    executor = _Closed(job_timeout=10.0)
    worker = _ClockedWorker(jobs, seconds)
    replacement = executor._supervise(worker)
    assert worker.killed is stopped
    assert (replacement is not worker) is stopped
    assert sorted(executor.failed) == (sorted(jobs) if stopped else [])


def test_a_stopped_worker_is_not_replaced_when_nothing_is_left_to_hand_out():
    executor = _Closed(job_timeout=10.0)
    executor._pending = []
    worker = _ClockedWorker(["a"], 11.0)
    assert executor._supervise(worker) is worker and worker.killed and worker.retired
    assert executor.failed == {"a": "timed out after 10 s on cuda:0"}


def test_the_reason_names_the_allowance_and_the_batch():
    executor = _Closed(job_timeout=10.0)
    executor._supervise(_ClockedWorker(["a", "b"], 21.0))
    assert executor.failed == {job: "timed out after 20 s on cuda:0 (a batch of 2 jobs)" for job in "ab"}
    executor._supervise(_ClockedWorker(["c"], 11.0))
    assert executor.failed["c"] == "timed out after 10 s on cuda:0"


def test_a_batch_whose_first_images_finished_keeps_the_whole_allowance():
    # Results of a batch can arrive one by one (after a memory fallback the
    # images render in turn); the allowance is for the batch as it was given.
    executor = _Closed(job_timeout=10.0)
    worker = _ClockedWorker(["a", "b", "c"], 25.0)
    worker.held.remove("a")
    worker.held.remove("b")
    assert executor._supervise(worker) is worker and not worker.killed


def test_without_a_timeout_nothing_is_stopped():
    executor = _Closed(job_timeout=None)
    worker = _ClockedWorker(["a"], 10**6)
    assert executor._supervise(worker) is worker and not worker.killed


def test_a_dask_task_stops_itself_at_its_deadline_and_fails_only_what_it_stopped():
    from pipeline.cluster_task import _Deadline

    assert not _Deadline(60.0).passed()
    deadline = _Deadline(0.0)
    assert deadline.passed() and deadline.expired
    stopped = {"job_id": "a", "device": "cuda:1", "status": "interrupted", "error": "interrupted; resumes next run"}
    finished = {"job_id": "b", "device": "cuda:1", "status": "done"}
    assert deadline.failure(finished, 2) == finished
    assert deadline.failure(stopped, 1) == {**stopped, "status": "failed", "error": "timed out after 0 s on cuda:1"}
    assert deadline.failure(stopped, 2)["error"] == "timed out after 0 s on cuda:1 (a batch of 2 jobs)"


def test_outside_a_dask_worker_the_stop_check_reads_not_asked_and_waits_a_second():
    # A broken stop channel must never fail or slow a render.
    import time

    from pipeline import cluster_task

    check = cluster_task._StopCheck("nst-stop-x")  # no Dask worker, no client here
    started = time.monotonic()
    assert check.requested() is False
    assert check._next_read > started  # the next read waits its interval
    # No wait for a connection (Dask's own timeouts are tens of seconds); the
    # bound is loose because the test machine is shared.
    assert time.monotonic() - started < 5
