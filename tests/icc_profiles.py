"""Real ICC profiles for tests, written byte by byte (ICC.1 v2).

No wide-gamut or CMYK profile ships with Pillow, and LittleCMS through Pillow
only creates sRGB and Lab ones, so the colour tests build their own:
- an RGB matrix/TRC profile with Display P3's primaries (as D50 colorants);
- a grey profile with a plain gamma curve;
- a CMYK printer profile whose table is a simple ink model (cmyk_model_to_srgb).
"""

from __future__ import annotations

import itertools
import struct

import numpy as np

D50 = (0.9642, 1.0, 0.8249)
# Display P3's colorants, chromatically adapted to D50; they sum to D50.
DISPLAY_P3_COLORANTS = (
    (0.5151, 0.2412, -0.0011),
    (0.2920, 0.6922, 0.0419),
    (0.1571, 0.0666, 0.7841),
)


# sRGB's, as cameras' "sRGB IEC61966-2.1" profiles store them.
SRGB_COLORANTS = (
    (0.4361, 0.2225, 0.0139),
    (0.3851, 0.7169, 0.0971),
    (0.1431, 0.0606, 0.7141),
)


def rgb_matrix_profile(colorants=DISPLAY_P3_COLORANTS, gamma: float | None = 2.2,
                       description: str = "test wide gamut (P3 primaries, gamma 2.2)") -> bytes:
    """A monitor RGB profile with these D50 colorants, and one gamma for all
    channels, or (gamma None) sRGB's curve as a 1024-entry table."""
    trc = _curve(gamma) if gamma is not None else _srgb_curve_table(1024)
    tags = [
        (b"desc", _text_description(description)),
        (b"cprt", b"text" + bytes(4) + b"no copyright, test data\x00"),
        (b"wtpt", _xyz(D50)),
        (b"rXYZ", _xyz(colorants[0])),
        (b"gXYZ", _xyz(colorants[1])),
        (b"bXYZ", _xyz(colorants[2])),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    return _profile(tags, b"mntr", b"RGB ")


def gray_profile(gamma: float, description: str = "test grey") -> bytes:
    """A monitor grey profile: one tone curve (kTRC) with this gamma."""
    tags = [
        (b"desc", _text_description(description)),
        (b"cprt", b"text" + bytes(4) + b"no copyright, test data\x00"),
        (b"wtpt", _xyz(D50)),
        (b"kTRC", _curve(gamma)),
    ]
    return _profile(tags, b"mntr", b"GRAY")


def cmyk_profile(description: str = "test CMYK (ink model)", grid: int = 17) -> bytes:
    """A printer profile whose A2B0 table samples cmyk_model_to_srgb on a grid
    of `grid` points per ink. LittleCMS interpolates it in simplices, so the
    grid must be fine for it to follow the (multilinear) model: at 17 points
    the error is about one 8-bit level."""
    steps = [i / (grid - 1) for i in range(grid)]
    corners = []
    for c, m, y, k in itertools.product(steps, repeat=4):  # first channel slowest, as ICC orders them
        linear = [(1 - ink) * (1 - k) for ink in (c, m, y)]
        xyz = [sum(row[i] * linear[i] for i in range(3)) for row in _SRGB_TO_XYZ_D50]
        corners += [round(v * 32768) for v in xyz]  # PCS XYZ in u1Fixed15
    lut = (
        b"mft2" + bytes(4) + struct.pack(">BBBB", 4, 3, grid, 0)
        + _s15((1, 0, 0, 0, 1, 0, 0, 0, 1))  # the matrix must be identity for non-XYZ input
        + struct.pack(">HH", 2, 2)
        + struct.pack(">8H", *(0, 65535) * 4)  # linear input curves
        + struct.pack(f">{len(corners)}H", *corners)
        + struct.pack(">6H", *(0, 65535) * 3)  # linear output curves
    )
    tags = [
        (b"desc", _text_description(description)),
        (b"cprt", b"text" + bytes(4) + b"no copyright, test data\x00"),
        (b"wtpt", _xyz(D50)),
        (b"A2B0", lut),
    ]
    return _profile(tags, b"prtr", b"CMYK")


def cmyk_model_to_srgb(cmyk):
    """What cmyk_profile means: inks 0..255 -> 8-bit sRGB, for an [..., 4] array."""
    inks = np.asarray(cmyk, dtype=np.float64) / 255
    return srgb_encode((1 - inks[..., :3]) * (1 - inks[..., 3:]))


def srgb_encode(linear) -> np.ndarray:
    """Linear light 0..1 -> 8-bit sRGB values (the sRGB transfer curve)."""
    linear = np.asarray(linear, dtype=np.float64)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.rint(encoded * 255).astype(np.uint8)


# sRGB's linear RGB -> XYZ, adapted to D50 (rows X, Y, Z): the colorants as columns.
_SRGB_TO_XYZ_D50 = tuple(zip(*SRGB_COLORANTS))


def _profile(tags, device_class: bytes, colour_space: bytes) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = [struct.pack(">I", len(tags))], []
    for signature, payload in tags:
        padded = payload + bytes(-len(payload) % 4)  # tag data starts on 4-byte boundaries
        table.append(struct.pack(">4sII", signature, offset, len(payload)))
        data.append(padded)
        offset += len(padded)
    body = b"".join(table) + b"".join(data)
    return _header(128 + len(body), device_class, colour_space) + body


def _header(size: int, device_class: bytes, colour_space: bytes) -> bytes:
    header = struct.pack(
        ">I4sI4s4s4s6H4sI4sII8sI", size, b"lcms", 0x02100000, device_class, colour_space, b"XYZ ",
        2026, 1, 1, 0, 0, 0, b"acsp", 0, b"\x00" * 4, 0, 0, bytes(8), 0,
    )
    header += _s15(D50) + bytes(4)  # illuminant, creator
    return header + bytes(128 - len(header))


def _s15(values) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _xyz(values) -> bytes:
    return b"XYZ " + bytes(4) + _s15(values)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))


def _srgb_curve_table(entries: int) -> bytes:
    def decode(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    values = [round(decode(i / (entries - 1)) * 65535) for i in range(entries)]
    return b"curv" + bytes(4) + struct.pack(f">I{entries}H", entries, *values)


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\x00"
    # ASCII part, then empty Unicode and ScriptCode parts (67 reserved bytes).
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)
