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
import functools
import hashlib
import io
import json
import os
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from nst_engine.errors import ImageError
from nst_engine.pixels import engine_view

from .jobs import RenderJob, slug

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
# Part of a source thumbnail's name. A thumbnail is reused while it is newer
# than its source, so a change in how thumbnails are made must change the name:
# 2 converts embedded colour profiles to sRGB; 3 converts as the engine does
# (16-bit greyscale scaled, transparency onto white).
SOURCE_THUMBS_VERSION = 3
THUMB_SIDE = 256

# What PIL raises on a truncated or garbled file, depending on where it breaks.
_BROKEN_IMAGE = (OSError, SyntaxError, ValueError, EOFError, struct.error)


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
    except _BROKEN_IMAGE:
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


# -- thumbnails -----------------------------------------------------------------


def write_thumbnail(src_png: Path, dest_jpg: Path, side: int = THUMB_SIDE) -> None:
    """A JPEG no larger than side x side; raises what PIL raises for a broken source."""
    with warnings.catch_warnings():
        # A huge photo is the engine's to judge, with its own one-line error; PIL's
        # warning would print a source line and "warnings.warn(" into cron's mail.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        opened = Image.open(src_png)
    with opened as image:
        image.draft("RGB", (side * 2, side * 2))  # JPEG sources decode at reduced scale
        # The sheet shows what the engine sees: upright, sRGB, deep greyscale
        # scaled and transparency on white (the engine's own conversion). It
        # runs before the resize, as in the engine, whose resize needs 8-bit RGB.
        image = engine_view(image, src_png.name)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    encoded = io.BytesIO()  # in memory first: see write_bytes_atomic
    image.save(encoded, format="JPEG", quality=85)
    write_bytes_atomic(Path(dest_jpg), encoded.getvalue())


def thumbnail_is_fresh(src: Path, thumb: Path) -> bool:
    """A thumbnail can be reused when it is at least as new as its source, and
    whole: it ends with JPEG's end-of-image marker (a cut-off one, as an older
    version could leave on a full disk, is made again). "New" counts the
    source's ctime too: a photo replaced by an older file (`mv`, `cp -p`,
    `rsync -a` keep its mtime) has an old mtime but a new ctime, which no tool
    can set back, and the sheet kept showing the photo it replaced."""
    try:
        stat = thumb.stat()
        source = src.stat()
        if stat.st_mtime_ns < max(source.st_mtime_ns, source.st_ctime_ns):
            return False
    except OSError:
        return False
    return _ends_whole(str(thumb), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1 << 16)
def _ends_whole(thumb: str, mtime_ns: int, size: int) -> bool:
    """Whether a JPEG ends with its end-of-image marker. Read once per version
    of the file (its mtime and size are in the key): the sheet is rebuilt after
    every result, and a 5000-job sheet would reread 5000 thumbnails each time."""
    try:
        with open(thumb, "rb") as handle:
            handle.seek(-2, os.SEEK_END)
            return handle.read(2) == b"\xff\xd9"
    except OSError:
        return False


def ensure_thumbnail(src: Path, thumb: Path, side: int = THUMB_SIDE) -> bool:
    """Write `thumb` unless a fresh one exists. False if the source cannot be read."""
    if thumbnail_is_fresh(src, thumb):
        return True
    try:
        write_thumbnail(src, thumb, side)
    except _BROKEN_IMAGE + (Image.DecompressionBombError, ImageError):
        return False
    return True


def source_thumbnail(image_path: Path, output_dir: Path) -> str | None:
    """Relative path of a thumbnail of a content or style image, made once.

    The name carries a hash of the full path so two `cat.jpg` from different
    folders do not overwrite each other. None if the source is unreadable.
    """
    image_path = Path(image_path)
    key = f"{SOURCE_THUMBS_VERSION}:{image_path}".encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(key).hexdigest()[:8]
    relative = f"{SOURCE_THUMBS_DIR}/{slug(image_path.stem)}-{digest}.jpg"
    if ensure_thumbnail(image_path, Path(output_dir) / relative):
        return relative
    return None
