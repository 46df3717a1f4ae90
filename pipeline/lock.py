"""One run per output folder, so two cron jobs never write the same gallery.

filelock uses fcntl locks, which the kernel drops when the holding process
dies: a lock left by a killed run is simply free again, with no stale-file
cleanup to get wrong. The holder's pid is written beside it for the message.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import OutputFolderError, PipelineError
from .jobs import CHECKPOINT_DIR
from .outputs import SOURCE_THUMBS_DIR, THUMBS_DIR

LOCK_NAME = ".nst.lock"
OWNER_NAME = ".nst.lock.owner"
# Where a run writes through temp files (".<name>.<random>.tmp", then a rename).
_TEMP_FOLDERS = (".", THUMBS_DIR, SOURCE_THUMBS_DIR, CHECKPOINT_DIR)


class OutputLockedError(PipelineError):
    """Another run holds this output folder."""


def check_output_folder(folder: Path) -> None:
    """Raise OutputFolderError if `folder` cannot hold a run's files; leaves nothing behind.

    Asked before anything runs (and by `nst plan`, which predicts the run), so
    a folder that is a file, lies under one, or is on a read-only disk is one
    line naming the folder, not an OSError from deep in the lock or the
    results reader.
    """
    for candidate in (folder, *folder.parents):
        try:
            info = candidate.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue  # created by the run; whatever blocks it is further up
        except OSError as error:
            raise OutputFolderError(folder, error.strerror or str(error)) from None
        if not stat.S_ISDIR(info.st_mode):
            what = "it" if candidate == folder else str(candidate)
            raise OutputFolderError(folder, f"{what} is a file, not a folder")
        # The nearest existing folder must take new files: the folder itself, or
        # the parent in which the run creates it.
        if not os.access(candidate, os.R_OK | os.W_OK | os.X_OK):
            read_only = os.statvfs(candidate).f_flag & os.ST_RDONLY
            readable = os.access(candidate, os.R_OK | os.X_OK)
            raise OutputFolderError(folder, os.strerror(errno.EROFS if read_only else errno.EACCES),
                                    readable=readable)
        if candidate != folder:
            _try_a_folder_in(candidate, folder)
        return


def _try_a_folder_in(parent: Path, folder: Path) -> None:
    """A folder whose permissions allow new files may still refuse them (/proc,
    some network and FUSE mounts): the run would stop at its mkdir. So make one
    and take it away at once."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nst-probe-", dir=parent))
    except OSError as error:
        raise OutputFolderError(folder, error.strerror or str(error), readable=True) from None


class OutputLock:
    def __init__(self, output_dir: Path, *, wait: bool, quiet: bool = False) -> None:
        self.output_dir = output_dir
        self._lock = FileLock(str(output_dir / LOCK_NAME), timeout=-1 if wait else 0)
        self._owner = output_dir / OWNER_NAME
        self.wait = wait
        self.quiet = quiet  # -q from cron: waiting is no trouble, and must not mail

    def __enter__(self) -> OutputLock:
        check_output_folder(self.output_dir)
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._acquire()
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
            raise OutputLockedError(
                f"{self.output_dir}: another nst render is using this folder ({self._holder()}); "
                "wait for it, or pass --wait to queue behind it"
            ) from None
        except OSError as error:  # what the check above cannot foresee (a full disk, a race)
            raise OutputFolderError(self.output_dir, error.strerror or str(error)) from None
        try:
            self._owner.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
        except OSError as error:
            self._lock.release()
            raise OutputFolderError(self.output_dir, error.strerror or str(error)) from None
        return self

    def _acquire(self) -> None:
        if self.wait:
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                # stderr directly: logging goes to the folder's log, which we don't hold yet.
                if not self.quiet:
                    print(f"nst: {self.output_dir} is busy ({self._holder()}); waiting for it", file=sys.stderr)
                self._lock.acquire()
        else:
            self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._owner.unlink(missing_ok=True)
        self._lock.release()

    def _holder(self) -> str:
        try:
            owner = json.loads(self._owner.read_text())
            return f"pid {owner['pid']} on {owner['host']}"
        except (OSError, ValueError, KeyError):
            return "pid unknown"


def running_render(output_dir: Path) -> str | None:
    """"pid N on HOST" if a render seems to hold this folder now, else None.

    Read from the owner file, without touching the lock itself: taking it even
    for a moment could make a render that starts then exit as busy. A run that
    was killed leaves its owner file behind, so a pid on this host must also be
    alive; one on another host (a shared disk) is taken at its word."""
    try:
        owner = json.loads((output_dir / OWNER_NAME).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == os.uname().nodename:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, under another user
    return f"pid {pid} on {host}"


def remove_dead_runs_temp_files(output_dir: Path, output_folders: Iterable[Path] = ()) -> int:
    """Delete the half-written temp files a killed run left; how many there were.

    Only the lock's holder may call this. Every process that writes into the
    folder works for the run that holds the lock, so a temp file there now was
    being written by a run that died (SIGKILL, a power cut) before it could
    rename or remove it. Only our own pattern, only in the folders we write:
    ours, and `output_folders`, the subfolders a `name:` template puts images
    and sidecars in (each is written through a temp file beside it).
    """
    removed = 0
    for folder in dict.fromkeys((*_TEMP_FOLDERS, *map(str, output_folders))):
        for path in (output_dir / folder).glob(".*.tmp"):
            try:
                if path.is_file():
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # it only takes space; the run does not need it gone
    return removed
