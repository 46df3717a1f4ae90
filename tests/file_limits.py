"""A real write failure for tests, without mocks or a mount.

RLIMIT_FSIZE makes every write past N bytes of a file fail with EFBIG ("File
too large"), the way a full disk or a quota fails it. Python ignores SIGXFSZ,
so the write raises instead of killing the process. Reads are not limited.
"""

from __future__ import annotations

import contextlib
import resource


def _set_soft_limit(nbytes: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    return soft, hard


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """In this process, for the block: no file may grow past `nbytes`."""
    previous = _set_soft_limit(nbytes)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous)


def limited_child(nbytes: int):
    """A subprocess preexec_fn: the child and every process it starts write at most `nbytes` per file."""
    return lambda: _set_soft_limit(nbytes)
