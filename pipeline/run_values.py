"""The values `run:` keys and the flags standing in for them take: devices
(`cuda:0,cuda:2`, `cpu*2`), a Dask scheduler's address, seconds and whole
numbers. Each raises ValueError with the message a manifest line or a flag shows."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from .value_words import show

MAX_WORKERS_PER_DEVICE = 1024  # more than cores (or a GPU's share) only slows each one
_DEVICE = re.compile(r"(cpu|cuda(?::\d+)?)(?:\*(\d+))?")


def parse_devices(spec: str | Sequence[str]) -> tuple[str, ...]:
    """`"cuda:0,cuda:2"` -> `("cuda:0", "cuda:2")`; `"cpu*2"` -> `("cpu", "cpu")`: one worker each."""
    tokens = spec.split(",") if isinstance(spec, str) else list(spec)
    devices: list[str] = []
    for token in tokens:
        match = _DEVICE.fullmatch(token.strip()) if isinstance(token, str) else None
        if match is None:
            raise ValueError(f"unknown device {token!r} (expected cpu, cuda or cuda:N, optionally *COUNT)")
        workers = int(match.group(2) or 1)
        if workers < 1:
            raise ValueError(f"{token.strip()}: expected at least 1 worker per device (leave a device out to use none)")
        if workers > MAX_WORKERS_PER_DEVICE:  # cpu*100000000 built a list of 2.8 GB
            raise ValueError(f"{token.strip()}: at most {MAX_WORKERS_PER_DEVICE} workers per device")
        devices += [match.group(1)] * workers
    if not devices:
        raise ValueError("must name at least one device")
    return tuple(devices)


def compact_devices(devices: Sequence[str]) -> str:
    """`("cpu", "cpu", "cuda:0")` -> `"cpu*2,cuda:0"`: parse_devices read back, for logs."""
    runs = [(device, len(list(group))) for device, group in itertools.groupby(devices)]
    return ",".join(device if n == 1 else f"{device}*{n}" for device, n in runs)


# The protocols Dask's comm layer knows. Dask itself reports a bad address (a
# ValueError, "missing port number") only once it tries to connect, as a traceback.
_CLUSTER_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")
_CLUSTER_ADDRESS = re.compile(r"([a-z][a-z0-9+.-]*)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):([^\s/]*)/?")


def check_cluster_address(value: str) -> str:
    """A Dask scheduler address as `dask worker` takes it, e.g. `tcp://head:8786`."""
    expected = f"expected an address like 'tcp://host:8786', got {show(value)}"
    match = _CLUSTER_ADDRESS.fullmatch(value)
    if match is None:
        raise ValueError(expected)
    protocol, _, port = match.groups()
    if protocol not in _CLUSTER_PROTOCOLS:
        raise ValueError(f"{expected} (unknown protocol '{protocol}'; expected {', '.join(_CLUSTER_PROTOCOLS)})")
    if not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{expected} (the port must be a number from 1 to 65535)")
    return value


def devices_value(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return parse_devices(value)
    raise ValueError(f"expected devices like 'cpu', 'cuda:0,cuda:1' or 'cpu*2', got {show(value)}")


def whole_number(value: Any) -> Any:
    """`checkpoint_every: 5e1` is 50, as for a render setting; 50.5 is still refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_BASE_60 = re.compile(r"\d+(?::[0-5]?\d)+")


def seconds_value(value: Any) -> Any:
    """`job_timeout: 1:30`, which YAML 1.1 read as 90, is text here (yaml_lines):
    a time of day's notation for a duration, ambiguous, so say both readings."""
    if isinstance(value, str) and _BASE_60.fullmatch(value.strip()):
        *higher, last = (int(part) for part in value.strip().split(":"))
        if len(higher) == 1:
            hint = f"{higher[0] * 60 + last} for {higher[0]} min {last} s, {higher[0] * 3600 + last * 60} for {higher[0]} h {last} min"
        else:
            hint = f"{sum(part * 60 ** i for i, part in enumerate(reversed([*higher, last])))}"
        raise ValueError(f"expected a number of seconds, got {show(value)} (write {hint})")
    return value
