"""What the local executor does with the jobs of a worker that died, decided
against stand-in workers; test_workers kills a real one."""

from __future__ import annotations

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.local_executor import LocalExecutor


class _Worker:
    """What the executor reads of a WorkerHandle."""

    def __init__(self, held: list[RenderJob] | None = None, *, alive: bool = True) -> None:
        self.held, self.assigned = list(held or []), len(held or [])
        self.slot, self.device, self.alive, self.retired, self.restartable = 0, "cuda:0", alive, False, True
        self.starts_without_progress, self.held_styles, self.max_batch_pixels = 0, set(), 10**9
        self.process = type("Process", (), {"exitcode": -9, "pid": 1})()

    @property
    def busy(self) -> bool:
        return bool(self.held)

    @property
    def idle(self) -> bool:
        return self.alive and not self.held

    def drain(self):
        return []

    def take_held(self):
        held, self.held = self.held, []
        return held

    def assign(self, jobs):
        self.held, self.assigned = list(jobs), len(jobs)

    def shutdown(self) -> None:
        pass


class _Executor(LocalExecutor):
    def __init__(self, pending: list[RenderJob]) -> None:
        super().__init__(["cuda:0", "cuda:1"], options=None)
        self._pending, self._open = list(pending), {job.job_id for job in pending}
        self._attempts, self._retry_alone = {}, set()
        self._listener = type("Listener", (), {"on_start": lambda *a: None, "on_result": lambda *a: None})()

    def _discard_partial_checkpoints(self, worker, jobs):
        pass

    def _start(self, slot, device):
        return _Worker()


def _jobs(count: int) -> list[RenderJob]:
    # One content and one size: every one of them can share a batch with the others.
    return [RenderJob(job_id=f"j{i}", content="photo.jpg", styles=(f"style{i}.jpg",),
                      settings=RenderSettings(size=64), output_name=f"j{i}.png",
                      content_label="photo", style_label=f"style{i}") for i in range(count)]


def test_the_jobs_of_a_batch_whose_worker_died_are_retried_one_at_a_time():
    # If one image of a batch kills its worker, its batch-mates must not die
    # with it again (and fail for good) on the retry.
    jobs = _jobs(4)
    executor = _Executor(jobs[3:])
    dead = _Worker(jobs[:3], alive=False)
    replacement = executor._supervise(dead)
    assert [job.job_id for job in executor._pending] == ["j0", "j1", "j2", "j3"]
    first, second = replacement, _Worker()
    executor._dispatch([first, second])
    assert [job.job_id for job in first.held] == ["j0"]
    assert [job.job_id for job in second.held] == ["j1"]
    # The retries out, the rest batch as before.
    third = _Worker()
    executor._dispatch([third])
    assert [job.job_id for job in third.held] == ["j2"]
    fourth = _Worker()
    executor._dispatch([fourth])
    assert [job.job_id for job in fourth.held] == ["j3"]


def test_without_a_death_jobs_still_batch():
    jobs = _jobs(3)
    executor = _Executor(jobs)
    worker = _Worker()
    executor.batch_cap = 8
    executor._dispatch([worker])
    assert len(worker.held) == 3


class _LeavingWorker(_Worker):
    """A worker that finishes its job as it is asked to leave."""

    def __init__(self, job: RenderJob) -> None:
        super().__init__([job], alive=False)
        self.stop_asked, self.job, polls = False, job, iter([True, True, False])
        self.process = type("Process", (), {"is_alive": lambda _: next(polls, False), "pid": 1})()

    def request_stop(self) -> None:
        self.stop_asked = True

    def drain(self):
        if not self.stop_asked or not self.held:
            return []
        return [("result", {"job_id": self.job.job_id, "status": "done"})]

    def finish_job(self, job_id):
        self.held = []
        return self.job


def test_a_result_that_arrives_while_the_workers_leave_is_recorded():
    # A render that ends just as the grace period runs out is a finished image.
    (job,) = _jobs(1)
    executor, recorded = _Executor([]), []
    executor._open = {job.job_id}
    executor._listener.on_result = lambda job, record: recorded.append((job.job_id, record["status"]))
    worker = _LeavingWorker(job)
    executor._shutdown([worker], now=False)
    assert worker.stop_asked
    assert recorded == [("j0", "done")]


def test_a_stop_that_lands_while_results_are_read_starts_no_new_job():
    from pipeline.events import StopSignal

    executor = _Executor(_jobs(3))
    executor._listener.on_idle = lambda: None
    workers = [_Worker(), _Worker()]
    for worker in workers:
        worker.cancel = lambda: None
    stop = StopSignal()
    executor._pump = lambda ws: stop.request()  # the signal arrives as the loop reads the pipes
    executor._loop(workers, stop)
    assert [w.held for w in workers] == [[], []]
    assert executor._pending == []  # cleared: they render next run


class _StubbornWorker(_Worker):
    """A busy worker that will not leave when asked: only a kill ends it."""

    def __init__(self, held: list[RenderJob]) -> None:
        super().__init__(held, alive=False)  # nothing to read from its pipe
        self.retire = lambda: setattr(self, "retired", True)
        self.request_stop = lambda: None
        self.process = type("Process", (), {"is_alive": lambda _: True, "pid": 1})()

    def kill(self):
        return self.take_held()


def _recording_executor(jobs: list[RenderJob]):
    executor, recorded = _Executor([]), []
    executor._open = {job.job_id for job in jobs}
    executor._listener.on_result = lambda job, record: recorded.append((job.job_id, record["status"], record["error"]))
    return executor, recorded


def test_the_jobs_a_second_signal_kills_are_recorded_interrupted():
    jobs = _jobs(2)
    executor, recorded = _recording_executor(jobs)
    executor._shutdown([_StubbornWorker(jobs)], now=True)
    reason = "interrupted: stopped at once by a second signal; resumes next run"
    assert recorded == [("j0", "interrupted", reason), ("j1", "interrupted", reason)]


def test_the_jobs_still_running_when_the_grace_period_ends_are_recorded_interrupted(monkeypatch):
    from pipeline import local_executor

    monkeypatch.setattr(local_executor, "SHUTDOWN_SECONDS", 0.1)
    (job,) = _jobs(1)
    executor, recorded = _recording_executor([job])
    executor._shutdown([_StubbornWorker([job])], now=False)
    assert recorded == [("j0", "interrupted",
                         "interrupted: still rendering when the stop's grace period ran out; resumes next run")]


def test_a_worker_that_dies_during_a_stop_is_not_replaced_and_its_job_is_interrupted():
    # Replaced, a fresh worker would load the weights only to be stopped, and
    # its job would be queued again after the queue was cleared for the stop.
    (job,) = _jobs(1)
    executor, recorded = _recording_executor([job])
    starts = []
    executor._start = lambda slot, device: starts.append(device) or _Worker()
    dead = _Worker([job], alive=False)
    dead.retire = lambda: setattr(dead, "retired", True)
    assert executor._supervise(dead, stopping=True) is dead
    assert dead.retired and starts == [] and executor._pending == []
    assert recorded == [("j0", "interrupted",
                         "interrupted: its worker died during the stop (killed by SIGKILL); resumes next run")]
