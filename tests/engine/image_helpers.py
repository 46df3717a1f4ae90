"""Helpers the image tests import: hand-built PNGs and tiny images saved to tmp_path."""

from __future__ import annotations

import struct
import zlib

from PIL import Image

WHITE = (255, 255, 255)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, *, bit_depth: int = 1, colour_type: int = 0, raw: bytes = b"") -> bytes:
    """A hand-built PNG: lets a test claim any size or bit depth without allocating pixels."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def saved(tmp_path, image: Image.Image, filename: str, **options):
    path = tmp_path / filename
    image.save(path, **options)
    return path


def pixels(image: Image.Image) -> list:
    assert image.mode == "RGB"
    return [image.getpixel((x, 0)) for x in range(image.width)]


def row(mode: str, values: list) -> Image.Image:
    image = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    return image
