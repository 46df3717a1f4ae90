"""One run per output folder, so two cron jobs never write the same gallery.

filelock uses fcntl locks, which the kernel drops when the holding process
dies: a lock left by a killed run is simply free again, with no stale-file
cleanup to get wrong. The holder's pid is written beside it for the message.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import PipelineError

LOCK_NAME = ".nst.lock"
OWNER_NAME = ".nst.lock.owner"


class OutputLockedError(PipelineError):
    """Another run holds this output folder."""


class OutputLock:
    def __init__(self, output_dir: Path, *, wait: bool) -> None:
        self.output_dir = output_dir
        self._lock = FileLock(str(output_dir / LOCK_NAME), timeout=-1 if wait else 0)
        self._owner = output_dir / OWNER_NAME
        self.wait = wait

    def __enter__(self) -> OutputLock:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.wait:
                try:
                    self._lock.acquire(timeout=0)
                except Timeout:
                    # stderr directly: logging goes to the folder's log, which we don't hold yet.
                    print(f"nst: {self.output_dir} is busy ({self._holder()}); waiting for it", file=sys.stderr)
                    self._lock.acquire()
            else:
                self._lock.acquire()
        except Timeout:
            raise OutputLockedError(
                f"{self.output_dir}: another nst render is using this folder ({self._holder()}); "
                "wait for it, or pass --wait to queue behind it"
            ) from None
        self._owner.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
        return self

    def __exit__(self, *exc: object) -> None:
        self._owner.unlink(missing_ok=True)
        self._lock.release()

    def _holder(self) -> str:
        try:
            owner = json.loads(self._owner.read_text())
            return f"pid {owner['pid']} on {owner['host']}"
        except (OSError, ValueError, KeyError):
            return "pid unknown"
