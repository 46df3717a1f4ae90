"""The CPU's model name, as a render's device name on the CPU.

Identical pixels need the same CPU (and thread count), so a sidecar must name
the CPU well enough to tell two machines apart. `platform.processor()` is ""
on Linux and `platform.machine()` only says "x86_64"; Linux's /proc/cpuinfo
has the model ("AMD EPYC 7B13"). Torch-free.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def model_name_in_cpuinfo(text: str) -> str | None:
    """The first `model name` in /proc/cpuinfo's text, or None. Only x86 and
    some ARM kernels write that line; the fallback covers the others."""
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == "model name" and value.strip():
            return " ".join(value.split())
    return None


@functools.cache
def cpu_model_name() -> str:
    """This machine's CPU model, else what `platform` knows, else "cpu"."""
    try:
        name = model_name_in_cpuinfo(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux
        name = None
    return name or platform.processor() or platform.machine() or "cpu"


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPU multiplies bf16 natively (Linux: /proc/cpuinfo).
    There `precision: auto` renders in bf16, about twice as fast as fp32."""
    try:
        flags = CPUINFO.read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags
