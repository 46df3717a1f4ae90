"""Which image files a manifest entry names: a file, a folder, or a glob.

A folder or glob never reaches into the manifest's own output folder, where
each run's renders would otherwise become the next run's inputs.
"""

from __future__ import annotations

import errno
import glob
import itertools
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .glob_walk import GlobTooWide, is_recursive, walk_glob

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# Pictures that folders and globs pass over, said in a note: an iPhone's HEIC
# shots or a camera's raw files would otherwise go missing without a word.
OTHER_PICTURE_SUFFIXES = frozenset({
    ".heic", ".heif", ".avif", ".jxl", ".jfif", ".jp2", ".ppm", ".pgm", ".pbm", ".pnm", ".psd", ".svg", ".ico",
    ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".srw", ".pef"})
_GLOB_CHARS = frozenset("*?[")


@dataclass
class OutputFolder:
    """The manifest's output folder, and the files that folders and globs left out
    for lying inside it: with `output: pics` and `contents: [pics/]`, each night's
    renders (and thumbs/) would otherwise be stylised again the next night."""

    path: Path  # absolute, resolved
    shown: str  # as messages name it
    skipped: set[Path] = field(default_factory=set)
    # Not about the output folder, but gathered on the same walk: pictures in
    # formats nst does not take, which folders and globs passed over.
    passed_over: set[Path] = field(default_factory=set)


def expand_images(spec: str, base: Path, outputs: OutputFolder | None = None) -> tuple[list[Path], str | None]:
    """The image files a path, glob or folder names (absolute, sorted), or why there are none.
    A folder or glob leaves out the files inside `outputs`."""
    path = base / Path(os.path.expanduser(spec))
    try:
        # A name that is there as written is that file or folder, glob
        # characters and all ("photo [1].jpg", "Trip [2024]/", "what?.jpg").
        if _GLOB_CHARS & set(spec) and not path.exists():
            found, problem = _glob_images(spec, base, outputs)
            return _outside(found, problem, _glob_root(spec, base), outputs, f"glob '{spec}' matched")
        if path.is_dir():
            listed = [p for p in sorted(path.iterdir(), key=natural_order) if not p.name.startswith(".")]
            others = _other_pictures(listed, outputs)
            # Resolved, so a symlink to a photo in the same folder is that photo, once.
            found = list(dict.fromkeys(p.resolve() for p in listed if _is_image(p)))
            if not found:
                return [], (f"folder '{spec}' holds no images ({', '.join(IMAGE_SUFFIXES)})"
                            f"{_other_pictures_hint(others)}{_subfolder_hint(spec, path)}")
            return _outside(found, None, path.resolve(), outputs, f"folder '{spec}' holds")
        if not path.is_file():
            if path.is_symlink():  # `ls` lists it, so "no such file" would puzzle
                return [], _dangling_link(spec, path)
            if path.exists():  # a named pipe or a device: there, but nothing to read an image from
                return [], f"'{spec}' is not a regular file (expected an image file)"
            # A trailing slash says the user meant a folder; "no such file" would mislead.
            kind = "folder" if spec.endswith(("/", os.sep)) else "file"
            return [], f"no such {kind} '{spec}'"
    except OSError as exc:
        return [], f"cannot read '{spec}': {exc.strerror or exc}"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return [], f"'{spec}' is not an image (expected {', '.join(IMAGE_SUFFIXES)})"
    # A file named on its own is used even inside the output folder: it cannot
    # grow by itself each night, and restyling a finished render is a fair wish.
    return [path.resolve()], None


def _dangling_link(spec: str, path: Path) -> str:
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a loop so
        return f"'{spec}' is a symlink loop"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return f"'{spec}' is a symlink loop"
    return f"'{spec}' is a symlink to '{os.readlink(path)}', which is not there"


def _subfolder_hint(spec: str, folder: Path) -> str:
    """Where the images are one level down or more: a folder is not searched
    below its own files, and a recursive glob is how to ask for that."""
    below = itertools.islice(folder.rglob("*"), 10_000)  # a look, not a crawl of a whole disk
    if not any(_is_image(p) for p in below if not p.name.startswith(".")):
        return ""
    return f"; its subfolders have some, but a folder is not searched below itself: use '{spec.rstrip('/')}/**/*'"


def natural_order(path: str | Path) -> list:
    """A sort key that reads numbers as numbers: IMG_2 before IMG_10, as a file
    manager lists them (plain text order puts c10 between c1 and c2), and
    letters regardless of case (code points put every capital first: Zebra
    before apple). Ties (IMG_02 and IMG_2, a.jpg and A.jpg) fall back to the
    exact text, so the order is total."""
    text = str(path)
    parts = re.split(r"(\d+)", text)
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold()) for part in parts] + [(2, 0, text)]


def _glob_images(spec: str, base: Path, outputs: OutputFolder | None) -> tuple[list[Path], str | None]:
    # root_dir rather than joining: glob characters in the manifest's own folder
    # name must not be read as a pattern.
    pattern = _any_case_suffix(_escape_existing_folders(os.path.expanduser(spec), base))
    if is_recursive(pattern):  # glob.glob's `**` loops through a link to a parent folder
        try:
            matched = walk_glob(pattern, base)
        except GlobTooWide as error:
            return [], f"glob '{spec}' {error}: start it from a smaller folder"
    else:
        matched = [base / m for m in glob.glob(pattern, root_dir=base)]
    files = [m for m in sorted(matched, key=natural_order) if m.is_file()]
    if not files:
        return [], f"glob '{spec}' matched no files"
    others = _other_pictures(files, outputs)
    images = list(dict.fromkeys(f.resolve() for f in files if _is_image(f)))
    if not images:
        return [], f"glob '{spec}' matched no image files ({', '.join(IMAGE_SUFFIXES)}){_other_pictures_hint(others)}"
    return images, None


def _folder_there_as_written(parts: tuple[str, ...], base: Path) -> int:
    """How many leading parts of a glob name a folder that exists with glob
    characters in its name ("Trip [2024]"): those parts are a name, not a pattern."""
    for count in range(len(parts) - 1, 0, -1):
        folder = Path(*parts[:count])
        if _GLOB_CHARS & set(str(folder)) and (base / folder).is_dir():
            return count
    return 0


def _escape_existing_folders(pattern: str, base: Path) -> str:
    parts = Path(pattern).parts
    count = _folder_there_as_written(parts, base)
    return os.path.join(glob.escape(str(Path(*parts[:count]))), *parts[count:]) if count else pattern


def _other_pictures(files: list[Path], outputs: OutputFolder | None) -> list[Path]:
    others = [f for f in files if f.suffix.lower() in OTHER_PICTURE_SUFFIXES and f.is_file()]
    if outputs is not None:
        outputs.passed_over.update(others)
    return others


def _other_pictures_hint(others: list[Path]) -> str:
    if not others:
        return ""
    return f"; it has {describe_suffixes(others)}, which nst does not read: convert them to JPEG or PNG"


def describe_suffixes(files) -> str:
    """"2 .heic files and 1 .dng file": the kinds of files, most first."""
    counts = Counter(Path(f).suffix.lower() for f in files)
    parts = [f"{n} {suffix} file{'s' if n > 1 else ''}" for suffix, n in counts.most_common()]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _any_case_suffix(pattern: str) -> str:
    """A glob's image extension in any case, as a folder takes it: "*.jpg"
    also matches a camera's IMG_0001.JPG (it passed over it, silently)."""
    for suffix in IMAGE_SUFFIXES:
        if pattern.lower().endswith(suffix):
            written = pattern[len(pattern) - len(suffix):]
            return pattern[: -len(suffix)] + "." + "".join(f"[{c.lower()}{c.upper()}]" for c in written[1:])
    return pattern


def _outside(found: list[Path], problem: str | None, root: Path, outputs: OutputFolder | None,
             what: str) -> tuple[list[Path], str | None]:
    """`found` less the files inside the output folder. Not when the folder named
    lies inside it (`output: .` and `contents: photos/`): that, like a file, is a
    folder the user chose, and renders land in it only if a `name:` puts them there."""
    if problem or outputs is None or (root != outputs.path and root.is_relative_to(outputs.path)):
        return found, problem
    inside = [f for f in found if f.is_relative_to(outputs.path)]
    outputs.skipped.update(inside)
    if inside and len(inside) == len(found):
        return [], (f"{what} no images outside the output folder '{outputs.shown}' "
                    f"({len(inside)} inside it left out: renders are never inputs)")
    return [f for f in found if f not in inside], None


def _glob_root(spec: str, base: Path) -> Path:
    """The folder a glob starts from: its parts up to the first with a glob character."""
    parts = Path(os.path.expanduser(spec)).parts
    count = _folder_there_as_written(parts, base)
    if count:
        return (base / Path(*parts[:count])).resolve()
    literal = list(itertools.takewhile(lambda part: not _GLOB_CHARS & set(part), parts))
    return (base / Path(*literal)).resolve() if literal else base.resolve()


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
