"""Image files before any pixel is decoded: reading the bytes, parsing the
header, and the size rules the network imposes. Torch-free, so that `nst plan`
can tell which inputs will fail without starting the engine.

`images.load_image` goes through the same header checks, so a plan and a
render give an input the same one-line reason.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO

from PIL import Image

from .errors import ImageError, ImageTooSmallError
from .setting_values import network_order

if TYPE_CHECKING:
    from .settings import RenderSettings

# 64 MP is well above any photo we render (renders top out at 8192 px a side,
# and inputs are downscaled first) yet refuses files that would take gigabytes
# to decode. It sits below PIL's own warning threshold (about 89 MP) so the
# usual refusal is ours, with the image's size in the message.
MAX_PIXELS = 64_000_000


# -- files and headers ----------------------------------------------------------
def read_image_file(path: str | os.PathLike, *, name: str | None = None) -> bytes:
    """The bytes of an image file, with the same one-line errors as `load_image`.

    For a caller that must look at the bytes before they are decoded (the
    pipeline checks they are the ones a job was planned with): reading them
    here once, then `load_image(data)`, decodes exactly what was checked.
    The header is checked first: a 2 GB video named .jpg is refused without
    being read into memory.
    """
    label = name or os.fspath(path)
    with file_errors(label), open(path, "rb") as fp:
        check_not_empty(fp, label)
        open_image(fp, label)  # lazy: reads the header only
        fp.seek(0)
        return fp.read()


def read_header(path: str | os.PathLike, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The stored (width, height) of an image file, after every check that needs
    only its header: empty, unreadable, not an image, too many pixels, animated.
    A file that passes can still be truncated; only decoding finds that out."""
    label = name or os.fspath(path)
    with file_errors(label), open(path, "rb") as fp:
        check_not_empty(fp, label)
        with open_image(fp, label) as image:
            check_pixels(image.size, label, max_pixels)
            check_still(image, label)
            return image.size


@contextmanager
def file_errors(label: str) -> Iterator[None]:
    """OSErrors from opening or reading a file, as one-line ImageErrors."""
    try:
        yield
    except FileNotFoundError:
        raise ImageError(f"no such file '{label}'") from None
    except IsADirectoryError:
        raise ImageError(f"{label} is a directory; expected an image file") from None
    except OSError as error:
        raise ImageError(f"{label} cannot be read ({error.strerror or error})") from None


def ignore_exif_warnings() -> None:
    """Inside warnings.catch_warnings(): PIL reads a JPEG's EXIF as it opens it,
    and a damaged block ("Corrupt EXIF data") costs only the orientation. Its
    warning named no file and went to stderr, which cron mails every night."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def check_not_empty(fp: BinaryIO, label: str) -> None:
    """An empty file gets its own reason: PIL would call it "not an image"."""
    if os.fstat(fp.fileno()).st_size == 0:
        raise ImageError(f"{label} is empty (0 bytes)")


def open_image(fp: BinaryIO, label: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """PIL's lazy open (the header only), with its failures as one-line ImageErrors."""
    try:
        with warnings.catch_warnings():
            # PIL warns above ~89 MP; `check_pixels` applies our own limit with
            # the image's size in the message, so the warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            ignore_exif_warnings()
            return Image.open(fp)
    except Image.DecompressionBombError as error:
        # PIL refuses above ~179 MP while reading the header, before we can see the size.
        raise ImageError(bomb_message(label, str(error), max_pixels)) from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{label} is not an image PIL can read") from None
    except Exception as error:  # header parsers raise many types on corrupt input
        raise ImageError(f"{label} has a corrupt header ({one_line(error)})") from error


def check_pixels(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{label} is {width}×{height} px ({_megapixels(width * height)} MP); "
            f"the limit is {_megapixels(max_pixels)} MP"
        )


def bomb_message(label: str, pil_message: str, max_pixels: int) -> str:
    limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
    found = re.search(r"\((\d+) pixels\)", pil_message)
    size = f"{_megapixels(int(found[1]))} MP" if found else "too large to decode safely"
    return f"{label} is {size}; the limit is {_megapixels(limit)} MP"


def check_still(image: Image.Image, label: str) -> None:
    frames = getattr(image, "n_frames", 1)
    # MPO is a JPEG with extra pictures (camera previews, depth maps), not an
    # animation: the first frame is the photo, and that is what PIL has open.
    if frames <= 1 or image.format == "MPO":
        return
    if image.format == "TIFF":
        raise ImageError(f"{label} has {frames} pages; expected a single image")
    raise ImageError(f"{label} is animated ({frames} frames); expected a still image")


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 100 else f"{mp:.3g}"


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


# -- sizes ----------------------------------------------------------------------
@functools.cache  # a plan asks once per input of every job of a sweep
def minimum_side(deepest_layer: str) -> int:
    """Smallest image side (px) whose feature map at `deepest_layer` is at least 1 px.

    Each 2x2 pool halves the side with floor rounding, so after k pools
    (counting the layer itself when it is a pool) the side must be >= 2**k.
    """
    order = network_order()
    if deepest_layer not in order:
        raise ValueError(f"unknown layer '{deepest_layer}' (expected a VGG19 layer such as relu4_2 or pool5)")
    upto = order[: order.index(deepest_layer) + 1]
    return 2 ** sum(name.startswith("pool") for name in upto)


def check_size(image_size: tuple[int, int], deepest_layer: str, *, name: str = "image") -> None:
    """Refuse an image the network cannot see through `deepest_layer`."""
    width, height = image_size
    least = minimum_side(deepest_layer)
    if min(width, height) < least:
        raise ImageTooSmallError(
            f"{name} is {width}×{height} px but must be at least {least}×{least} px "
            f"for layer {deepest_layer}"
        )


def scaled_size(size: tuple[int, int], side: int, upscale: bool) -> tuple[int, int]:
    """`size` scaled so its longest side is `side`; unchanged if smaller and not `upscale`."""
    if side < 1:
        raise ValueError(f"side must be at least 1 px, got {side}")
    width, height = size
    longest = max(width, height)
    if longest == side or (longest < side and not upscale):
        return (width, height)
    # Integer round-half-up, so the longest side comes out as exactly `side`.
    return tuple(max(1, (2 * dim * side + longest) // (2 * longest)) for dim in (width, height))


def check_render_sizes(settings: RenderSettings, content: tuple[str, tuple[int, int]],
                       styles: Sequence[tuple[str, tuple[int, int]]]) -> None:
    """From the inputs' (name, stored size) alone, raise the ImageTooSmallError a
    render would: each file as stored (the worker's check), then as the engine
    scales it for each stage (a long panorama can shrink below the minimum)."""
    deepest = settings.deepest_layer()
    content_name, content_size = content
    sides = settings.sides_for(max(content_size))
    check_size(content_size, deepest, name=content_name)
    for name, size in styles:
        check_size(size, deepest, name=name)
    least = minimum_side(deepest)
    for side in sides:
        try:
            check_size(scaled_size(content_size, side, True), deepest, name=f"{content_name} (scaled to {side} px)")
        except ImageTooSmallError as error:
            # A panorama: say which size would keep its short side big enough.
            needed = -(-least * max(content_size) // min(content_size))
            fix = f"a size of at least {needed}" if side == sides[-1] else f"every stage at {needed} px or more"
            raise ImageTooSmallError(f"{error}; it needs {fix}") from None
        style_side = settings.style_side(side)
        # A photo smaller than `size` renders at its own size, and the painting
        # with it: then the photo is the cause, and the message says so.
        why = (f": {content_name} renders at its own {sides[-1]} px, as upscale is off"
               if sides[-1] < settings.size else "")
        for name, size in styles:
            check_size(scaled_size(size, style_side, False), deepest,
                       name=f"{name} (scaled to {style_side} px{why})")
