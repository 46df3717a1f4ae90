"""The bytes a job renders must be the bytes its id was computed from.

A job id hashes its input files' bytes when the run plans it; a worker reads
the files again when the job starts, maybe hours later. A photo replaced in
between (`cp other.jpg photos/cat.jpg` during the night) would otherwise be
rendered and saved under the old bytes' id, and if the old file came back, the
wrong image would count as done for good. So the worker hashes the bytes it
already holds (read once, or shipped to a Dask worker) against RenderJob.digests
before decoding them, and fails just that job when they differ. The next run
plans the file anew and renders it under its new id.

Torch-free, like every pipeline module but the worker: only hashlib.
"""

from __future__ import annotations

import hashlib

from .errors import PipelineError
from .jobs import RenderJob


class InputChangedError(PipelineError):
    """An input file's bytes are not those its job was planned (and named) with."""


def check_unchanged(job: RenderJob, path: str, data: bytes) -> None:
    """Raise InputChangedError if `data`, read from `path` for `job`, is not what the job id hashed."""
    planned = dict(job.digests).get(path)
    if planned is None:  # a job not planned from files (nst report, tests): nothing to compare with
        return
    if hashlib.sha256(data).hexdigest() != planned:
        raise InputChangedError(changed_reason(path))


def changed_reason(path: str) -> str:
    """The one-line reason on the contact sheet. The whole path: a photo and a
    painting may share a file name."""
    return f"{path} changed since this run planned it; the next run renders it with its new contents"
