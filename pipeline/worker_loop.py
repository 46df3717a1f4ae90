"""The life of one local worker process: build the engine once, then render tasks.

Each worker talks to the parent over its own duplex pipe. A shared
multiprocessing.Queue would be simpler, but a worker killed with SIGKILL while
holding the queue's write lock would deadlock every other worker; a private
pipe only ever breaks for the worker that died.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection
from typing import Any

from .jobs import WorkerOptions
from .worker import build_engine, internal_error, max_batch_pixels, render_task


def worker_main(slot: int, device: str, options: WorkerOptions, conn: Connection) -> None:
    # The parent decides what a Ctrl-C, SIGTERM or SIGHUP means (finish,
    # checkpoint, stop); the worker hears about it through the pipe. The
    # process entry (worker_handle) ignores those signals before torch loads.
    parent = os.getppid()
    engine = _start_engine(device, options, conn)
    if engine is None:
        return
    identity = {"pid": os.getpid(), "device_name": engine.device_name}
    held_styles: set[str] = set()
    cancelled = leaving = False

    def should_cancel() -> bool:
        nonlocal cancelled, leaving
        while not cancelled and conn.poll():
            kind, _ = conn.recv()
            cancelled = kind in ("cancel", "stop")
            leaving = kind == "stop"  # read here, it must still end the loop below
        return cancelled

    while not leaving:
        _send(conn, "ready", {**identity, "held_styles": sorted(held_styles),
                              "max_batch_pixels": max_batch_pixels(engine)})
        message = _receive(conn, parent)
        if message is None or message[0] == "stop":
            return
        kind, jobs = message
        if kind != "task" or cancelled:
            continue
        _run_task(engine, jobs, options, conn, should_cancel)
        held_styles.update(style for job in jobs for style in job.styles)


def _run_task(engine, jobs, options: WorkerOptions, conn: Connection, should_cancel) -> None:
    """Render a task, sending each result as soon as it exists."""
    sent: set[str] = set()

    def send_result(result: dict[str, Any]) -> None:
        sent.add(result["job_id"])
        _send(conn, "result", result)

    try:
        render_task(engine, jobs, options, on_progress=lambda event: _send(conn, "progress", event),
                    should_cancel=should_cancel, on_result=send_result)
    except Exception as error:  # a bug outside any one job: fail what is left, keep the worker
        for job in jobs:
            if job.job_id not in sent:
                send_result(internal_error(engine, job, error))


def _start_engine(device: str, options: WorkerOptions, conn: Connection):
    """The engine for this worker's device, or None after telling the parent why not."""
    try:
        engine = build_engine(device, options)
        # Touch the device now: torch.device("cuda:0") is only a name, and a
        # device that cannot work (no such GPU, a CPU-only torch) must fail here,
        # with its reason sent to the parent, not as a crash in the render loop.
        engine.device_name  # noqa: B018
        max_batch_pixels(engine)
        return engine
    except Exception as error:  # no engine, no work: tell the parent why
        _send(conn, "fatal", {"error": f"{type(error).__name__}: {error}".splitlines()[0]})
        return None


def _receive(conn: Connection, parent: int) -> tuple[str, Any] | None:
    """Wait for the next message; give up if the parent has gone away."""
    while True:
        if os.getppid() != parent:
            return None
        try:
            if conn.poll(1.0):
                return conn.recv()
        except (EOFError, OSError):
            return None


def _send(conn: Connection, kind: str, payload: Any) -> None:
    try:
        conn.send((kind, payload))
    except (BrokenPipeError, OSError):
        os._exit(0)  # the parent is gone; nothing left to report to
