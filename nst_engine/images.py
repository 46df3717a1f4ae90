"""Input images: decode safely to 8-bit RGB, size them for the network, and
move them to and from tensors.

Every image the engine sees goes through `load_image`, so this is the one place
that knows about colour modes, bit depths, ICC profiles, EXIF orientation and
hostile files (the conversion itself is pixels.engine_view, torch-free, which
the contact sheet's thumbnails share). Its failures are `ImageError`s with one line that names the
file, because a bad input costs one job and its reason lands in the contact
sheet.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from .color import luminance, match_luminance, recombine_color
from .errors import ImageError, ImageTooSmallError
from .pixels import engine_view
from .setting_values import network_order

__all__ = [
    "MAX_PIXELS",
    "check_size",
    "fit_longest_side",
    "image_digest",
    "load_image",
    "luminance",
    "match_luminance",
    "minimum_side",
    "read_image_file",
    "recombine_color",
    "scaled_size",
    "to_image",
    "to_tensor",
]

# 64 MP is well above any photo we render (renders top out at 8192 px a side,
# and inputs are downscaled first) yet refuses files that would take gigabytes
# to decode. It sits below PIL's own warning threshold (about 89 MP) so the
# usual refusal is ours, with the image's size in the message.
MAX_PIXELS = 64_000_000

ImageSource = str | os.PathLike | bytes | Image.Image


# -- loading ------------------------------------------------------------------
def load_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, name: str | None = None
) -> Image.Image:
    """Decode `source` (a path, the file's bytes, or a PIL image) to a loaded 8-bit RGB image.

    `name` labels the image in error messages; it defaults to the path as given,
    "image bytes", or the PIL image's filename.
    """
    if isinstance(source, Image.Image):
        label = name or os.path.basename(getattr(source, "filename", "") or "") or "image"
        return _decode(source, label, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "image bytes"
        if not len(source):
            raise ImageError(f"{label} is empty (0 bytes)")
        return _open_and_decode(io.BytesIO(source), label, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source, name or os.fspath(source), max_pixels)
    raise TypeError(f"load_image expects a path, bytes or a PIL image, got {type(source).__name__}")


def read_image_file(path: str | os.PathLike, *, name: str | None = None) -> bytes:
    """The bytes of an image file, with the same one-line errors as `load_image`.

    For a caller that must look at the bytes before they are decoded (the
    pipeline checks they are the ones a job was planned with): reading them
    here once, then `load_image(data)`, decodes exactly what was checked.
    """
    with _file_errors(name or os.fspath(path)), open(path, "rb") as fp:
        return fp.read()


def _load_path(path: str | os.PathLike, label: str, max_pixels: int) -> Image.Image:
    # The body of the `with` turns its own failures into ImageError, so the
    # OSErrors that reach _file_errors come from opening the file itself.
    with _file_errors(label), open(path, "rb") as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise ImageError(f"{label} is empty (0 bytes)")
        return _open_and_decode(fp, label, max_pixels)


@contextmanager
def _file_errors(label: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise ImageError(f"no such file '{label}'") from None
    except IsADirectoryError:
        raise ImageError(f"{label} is a directory; expected an image file") from None
    except OSError as error:
        raise ImageError(f"{label} cannot be read ({error.strerror or error})") from None


def _open_and_decode(fp: BinaryIO, label: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # PIL warns above ~89 MP; `_check_pixels` below applies our own
            # limit with the image's size in the message, so the warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except Image.DecompressionBombError as error:
        # PIL refuses above ~179 MP while reading the header, before we can see the size.
        raise ImageError(_bomb_message(label, str(error), max_pixels)) from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{label} is not an image PIL can read") from None
    except Exception as error:  # header parsers raise many types on corrupt input
        raise ImageError(f"{label} has a corrupt header ({_one_line(error)})") from error
    with image:
        return _decode(image, label, max_pixels)


def _decode(image: Image.Image, label: str, max_pixels: int) -> Image.Image:
    # The size comes from the header; checking it before `load` is what stops
    # a decompression bomb from ever allocating its pixels.
    _check_pixels(image.size, label, max_pixels)
    try:
        _check_still(image, label)
        # `load` raises on truncated data: we never set LOAD_TRUNCATED_IMAGES,
        # because a half-grey photo would render without complaint.
        image.load()
        return engine_view(image, label)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # some decoders check again as they load
        raise ImageError(_bomb_message(label, str(error), max_pixels)) from None
    except Exception as error:  # decoders raise OSError, ValueError, SyntaxError, struct.error…
        raise ImageError(f"{label} is truncated or corrupt ({_one_line(error)})") from error


def _check_pixels(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{label} is {width}×{height} px ({_megapixels(width * height)} MP); "
            f"the limit is {_megapixels(max_pixels)} MP"
        )


def _bomb_message(label: str, pil_message: str, max_pixels: int) -> str:
    limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
    found = re.search(r"\((\d+) pixels\)", pil_message)
    size = f"{_megapixels(int(found[1]))} MP" if found else "too large to decode safely"
    return f"{label} is {size}; the limit is {_megapixels(limit)} MP"


def _check_still(image: Image.Image, label: str) -> None:
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


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


# -- sizes ----------------------------------------------------------------------
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


def fit_longest_side(image: Image.Image, side: int, *, upscale: bool = False) -> Image.Image:
    """Resize (Lanczos) so the longest side is `side`; returns `image` itself if no change."""
    size = scaled_size(image.size, side, upscale)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


# -- tensors --------------------------------------------------------------------
def to_tensor(
    image: Image.Image, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """An RGB image as a contiguous [1, 3, H, W] tensor with values 0..1."""
    _require_rgb(image, "to_tensor")
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8))
    # Move the uint8 pixels (4x smaller than floats) and scale in fp32 on the
    # device. `.contiguous()` matters: the permuted view would otherwise stay
    # channels-last through `.to`, and L-BFGS breaks on channels-last images.
    pixels = pixels.to(device).permute(2, 0, 1).unsqueeze(0)
    return pixels.to(torch.float32).div_(255).to(dtype).contiguous()


def to_image(tensor: torch.Tensor) -> Image.Image:
    """A [1, 3, H, W] or [3, H, W] tensor of 0..1 values as an RGB image (clamped, rounded)."""
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ValueError(f"to_image expects a [1, 3, H, W] or [3, H, W] tensor, got {list(tensor.shape)}")
    values = tensor.detach().to("cpu", torch.float32)
    if not torch.isfinite(values).all():
        raise ValueError("to_image got NaN or infinite values; the render diverged")
    pixels = values.clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())


# -- identity ---------------------------------------------------------------------
def image_digest(image: Image.Image) -> str:
    """sha256 of the size and RGB pixels: a cache key stable across processes and runs."""
    _require_rgb(image, "image_digest")
    width, height = image.size
    return hashlib.sha256(f"{width}x{height}:".encode() + image.tobytes()).hexdigest()


def _require_rgb(image: Image.Image, where: str) -> None:
    if image.mode != "RGB":
        raise ValueError(f"{where} expects an RGB image, got mode '{image.mode}'; use load_image first")
