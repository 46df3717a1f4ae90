"""What runs inside a Dask worker: one engine per worker process, reused by every task.

Imports the engine (through worker.py), so only Dask workers import this module.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from .jobs import RenderJob, WorkerOptions
from .worker import build_engine, local_device, render_task

_engine = None
# A worker may run tasks on several threads; one device renders one task at a time.
_engine_lock = threading.Lock()


def render_on_cluster(
    jobs: list[RenderJob], options: WorkerOptions, inputs: dict[str, bytes]
) -> list[dict[str, Any]]:
    global _engine
    # Checkpoints live in the submitting machine's output folder, which a remote
    # worker cannot see; a cluster task that dies is rerun from the start.
    options = replace(options, checkpoint_every=0)
    with _engine_lock:
        if _engine is None:
            _engine = build_engine(local_device(), options)
        return render_task(_engine, jobs, options, inputs=inputs)
