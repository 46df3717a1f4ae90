"""The parent's view of one worker process: its pipe, its process and what it holds."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

from .jobs import RenderJob

# What a Ctrl-C, a kill or a closed SSH session (SIGHUP, sent to the whole
# process group) means is the parent's to decide: the worker hears it by pipe.
PARENT_DECIDES = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def start_worker(slot: int, device: str, *args) -> None:
    """Process entry point. The engine (and torch) is imported here, in the
    child: the parent must never load CUDA, and pickling this torch-free
    function by name keeps it that way."""
    if device != "cpu":
        # A GPU worker's CPU threads mostly wait; spinning while they wait
        # would take cores from other workers and processes for nothing. A CPU
        # worker keeps OpenMP's default (spin briefly, then sleep): passive
        # waiting made its renders ~16% slower at 128 px (3.92 s vs 3.36 s).
        # It must be set before torch loads OpenMP; a value the user set wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # The parent decides what a Ctrl-C means; WorkerHandle.start had the signals
    # ignored across the spawn (_ignored_while_spawning), and from here they stay so.
    for parents_signal in PARENT_DECIDES:
        signal.signal(parents_signal, signal.SIG_IGN)
    from .worker_loop import worker_main

    worker_main(slot, device, *args)


@contextlib.contextmanager
def _ignored_while_spawning():
    """A Ctrl-C in a terminal goes to the whole process group, and a worker
    still starting (Python, then torch: seconds) died of it: killed by the
    signal, or with a KeyboardInterrupt traceback. A spawned process keeps only
    the dispositions that are "ignore" across its exec; it does not keep a
    blocked mask (multiprocessing's spawn clears it, which blocking the signals
    here, as this once did, never survived). So this process ignores them for
    the moment of the start, and start_worker ignores them from then on. One
    that arrives in those few milliseconds is lost, where it used to kill a
    worker. Off the main thread, where handlers cannot be set, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in PARENT_DECIDES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class WorkerHandle:
    def __init__(self, slot: int, device: str, process, conn) -> None:
        self.slot = slot
        self.device = device
        self.process = process
        self.conn = conn
        self.held: list[RenderJob] = []
        self.assigned = 0  # jobs in the batch it was last given (held shrinks as they finish)
        self.held_styles: set[str] = set()
        self.max_batch_pixels = 0
        self.ready = False
        self.retired = False
        self.starts_without_progress = 0
        self._busy_since = 0.0

    @classmethod
    def start(cls, context, slot: int, device: str, options) -> WorkerHandle:
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(
            target=start_worker,
            args=(slot, device, options, child_conn),
            name=f"nst-worker-{slot}-{device}",
            daemon=True,
        )
        with _ignored_while_spawning():
            process.start()
        child_conn.close()  # the child has its own copy; ours would hide EOF
        return cls(slot, device, process, parent_conn)

    # -- state -------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return not self.retired and self.process.is_alive()

    @property
    def restartable(self) -> bool:
        return not self.retired

    @property
    def busy(self) -> bool:
        return bool(self.held)

    @property
    def idle(self) -> bool:
        return self.alive and self.ready and not self.held

    def busy_seconds(self) -> float:
        return time.monotonic() - self._busy_since if self.held else 0.0

    # -- messages ----------------------------------------------------------------
    def drain(self) -> list[tuple[str, Any]]:
        messages = []
        try:
            while self.conn.poll():
                messages.append(self.conn.recv())
        except (EOFError, OSError):
            pass  # the process is dead or dying; its sentinel tells the rest
        return messages

    def mark_ready(self, info: dict[str, Any]) -> None:
        self.ready = True
        self.held_styles = set(info.get("held_styles", ()))
        self.max_batch_pixels = int(info.get("max_batch_pixels", 0))

    def assign(self, jobs: list[RenderJob]) -> None:
        self.held = list(jobs)
        self.assigned = len(jobs)
        self.ready = False
        self._busy_since = time.monotonic()
        self._send(("task", jobs))

    def finish_job(self, job_id: str) -> RenderJob | None:
        for job in self.held:
            if job.job_id == job_id:
                self.held.remove(job)
                return job
        return None

    def take_held(self) -> list[RenderJob]:
        held, self.held = self.held, []
        return held

    def cancel(self) -> None:
        if self.alive:
            self._send(("cancel", None))

    def kill(self) -> list[RenderJob]:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(5)
        return self.take_held()

    def retire(self) -> None:
        self.retired = True
        with contextlib.suppress(Exception):
            self.process.kill()

    def request_stop(self) -> None:
        """Ask it to leave: an idle worker exits, a busy one cancels (and checkpoints) first."""
        if self.process.is_alive():
            self._send(("stop", None))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask politely, then insist: no worker outlives the run."""
        if self.process.is_alive():
            self.request_stop()
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        with contextlib.suppress(Exception):
            self.conn.close()

    def _send(self, message) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(message)
