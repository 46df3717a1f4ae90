"""Writing results so that a crash or a power cut never leaves a half-written file.

Every file lands in a temp file in the same folder first (same filesystem, so
`os.replace` is an atomic rename), is fsynced, and only then takes its final
name. A rerun trusts an output only if the PNG decodes and carries the job id
in its own text chunk, and the sidecar names the same job: a file that merely
exists proves nothing after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .jobs import RenderJob

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"  # the last run: counts, devices, manifest (recorder.write_summary)
JOB_ID_KEY = "nst:job_id"
SETTINGS_KEY = "nst:settings"
THUMBS_DIR = "thumbs"
SOURCE_THUMBS_DIR = f"{THUMBS_DIR}/sources"

# What PIL raises on a truncated or garbled file, depending on where it breaks.
BROKEN_IMAGE = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def _read_umask() -> int:
    # mkstemp creates files 0600; outputs should get the usual permissions so a
    # web server or another user can read the gallery. os.umask can only be read
    # by setting it, so do that once, at import.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on Windows."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write encoded bytes (a PNG, a JSON text) atomically. Callers encode in
    memory first: an encoder handed the file itself may write to its descriptor
    directly, and Pillow's takes a short write (a disk filling up) for success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
    except BaseException:
        # Includes KeyboardInterrupt: the final path keeps its previous version.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def encode_png(image: Image.Image, text: dict[str, str]) -> bytes:
    """PNG bytes whose text chunks hold `text` (e.g. job id, settings)."""
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)  # falls back to iTXt for non-Latin-1 values
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


# -- results.jsonl ------------------------------------------------------------


def append_result(output_dir: Path, record: dict[str, Any]) -> None:
    """Append one record as one line.

    The line goes out in a single write() on an O_APPEND descriptor, so lines
    from concurrent writers never interleave. If a power cut left a partial last
    line, start on a fresh line so the new record is not glued onto the debris.
    """
    path = Path(output_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        # The lock only covers the look at the last byte: another writer's
        # append grows the file page by page, so unlocked we would see its
        # half-written line and add a needless blank line.
        _lock(fd)
        if _ends_mid_line(fd):
            line = b"\n" + line
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk (or a file size limit)
                raise OSError(errno.ENOSPC, f"short write, {written} of {len(line)} bytes (is the disk full?)", str(path))
        except OSError:
            os.ftruncate(fd, size)  # no cut-off line left behind for a monitor's json.loads to trip on
            raise
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock


def _lock(fd: int) -> None:
    if fcntl is not None:  # POSIX; elsewhere the worst case is a blank line
        fcntl.flock(fd, fcntl.LOCK_EX)


def _ends_mid_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    if size == 0:
        return False
    os.lseek(fd, size - 1, os.SEEK_SET)  # reads honour the offset; O_APPEND writes ignore it
    return os.read(fd, 1) != b"\n"


def read_results(output_dir: Path) -> dict[str, dict[str, Any]]:
    """The last record of each job id; undecodable lines (a cut-off tail) are skipped."""
    path = Path(output_dir) / RESULTS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    latest: dict[str, dict[str, Any]] = {}
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            continue
        if isinstance(record, dict) and isinstance(record.get("job_id"), str):
            latest[record["job_id"]] = record
    return latest



def read_summary(output_dir: Path) -> dict[str, Any]:
    """The last run's summary, or {} when there is none or it cannot be read."""
    try:
        summary = json.loads((Path(output_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


# -- deciding whether a job is already done -------------------------------------


def png_job_id(path: Path) -> str | None:
    """The job id stored in a PNG's text chunk, or None if the file is not a whole PNG."""
    try:
        with Image.open(path) as image:
            # Read the chunk before verify(): after it the image is unusable.
            # Our text chunks precede the pixel data, so they are already parsed.
            job_id = image.info.get(JOB_ID_KEY)
            image.verify()  # walks every chunk and its CRC: catches truncation
    except BROKEN_IMAGE:
        return None
    return job_id if isinstance(job_id, str) else None


def output_is_complete(output_dir: Path, job: RenderJob) -> bool:
    """True if a previous run fully finished `job`, so a rerun may skip it."""
    return complete_sidecar(output_dir, job) is not None


def complete_sidecar(output_dir: Path, job: RenderJob) -> dict[str, Any] | None:
    """The sidecar of `job` when its output is complete (the test of
    output_is_complete), else None."""
    return sidecar_of_complete_png(Path(output_dir) / job.output_name, job.job_id)


def sidecar_of_complete_png(png: Path, job_id: str) -> dict[str, Any] | None:
    """The sidecar next to `png` when both are whole and name `job_id`, else None."""
    if png_job_id(png) != job_id:
        return None
    try:
        sidecar = json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return sidecar if isinstance(sidecar, dict) and sidecar.get("job_id") == job_id else None


def output_problem(png: Path, job_id: str) -> str | None:
    """Why the files of a job that was written before do not count as done (the
    plan says why it renders again); None where they are whole, or where neither
    the image nor its sidecar is there (never written, or deleted whole)."""
    sidecar = png.with_suffix(".json")
    if not png.exists():
        return "image missing (its sidecar is there)" if sidecar.exists() else None
    found = png_job_id(png)
    if found is None:
        # Saved again by an editor, which drops the text chunk, or cut short.
        return "image unreadable, cut short, or saved again without its job id; it is overwritten"
    if found != job_id:
        return "image carries another job's id; it is overwritten"
    if not sidecar.exists():
        return "sidecar missing"
    if sidecar_of_complete_png(png, job_id) is None:
        return "sidecar unreadable or naming another job"
    return None
