"""The contact sheet's thumbnails: one JPEG per rendered image and per source
photo and painting, made once and reused while it is newer than its source.
Each is written atomically (outputs.write_bytes_atomic)."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from pathlib import Path

from PIL import Image

from nst_engine.errors import ImageError
from nst_engine.pixels import engine_view

from .jobs import slug
from .outputs import BROKEN_IMAGE, SOURCE_THUMBS_DIR, write_bytes_atomic

# Part of a source thumbnail's name. A thumbnail is reused while it is newer
# than its source, so a change in how thumbnails are made must change the name:
# 2 converts embedded colour profiles to sRGB; 3 converts as the engine does
# (16-bit greyscale scaled, transparency onto white).
SOURCE_THUMBS_VERSION = 3
THUMB_SIDE = 256


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
    except BROKEN_IMAGE + (Image.DecompressionBombError, ImageError):
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
