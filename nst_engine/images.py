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
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from .color import luminance, match_luminance, recombine_color
from .errors import ImageError
from .image_files import (
    MAX_PIXELS,
    bomb_message,
    check_not_empty,
    check_pixels,
    check_size,
    check_still,
    file_errors,
    minimum_side,
    one_line,
    open_image,
    read_image_file,
    scaled_size,
)
from .pixels import engine_view

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


def _load_path(path: str | os.PathLike, label: str, max_pixels: int) -> Image.Image:
    # The body of the `with` turns its own failures into ImageError, so the
    # OSErrors that reach file_errors come from opening the file itself.
    with file_errors(label), open(path, "rb") as fp:
        check_not_empty(fp, label)
        return _open_and_decode(fp, label, max_pixels)


def _open_and_decode(fp: BinaryIO, label: str, max_pixels: int) -> Image.Image:
    with open_image(fp, label, max_pixels) as image:
        return _decode(image, label, max_pixels)


def _decode(image: Image.Image, label: str, max_pixels: int) -> Image.Image:
    # The size comes from the header; checking it before `load` is what stops
    # a decompression bomb from ever allocating its pixels.
    check_pixels(image.size, label, max_pixels)
    try:
        check_still(image, label)
        # `load` raises on truncated data: we never set LOAD_TRUNCATED_IMAGES,
        # because a half-grey photo would render without complaint.
        image.load()
        return engine_view(image, label)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # some decoders check again as they load
        raise ImageError(bomb_message(label, str(error), max_pixels)) from None
    except Exception as error:  # decoders raise OSError, ValueError, SyntaxError, struct.error…
        raise ImageError(f"{label} is truncated or corrupt ({one_line(error)})") from error


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
