"""Style-target cache: Gram matrices per style image, in memory and on disk.

A gallery renders each style against many contents, and a style's Gram matrices
depend only on the style's pixels, its resized size, the network and the
precision. Keys are content-addressed over exactly those, so the disk entries
are shared by every worker process and every run.

Disk entries are written with torch.save to a temporary file and renamed into
place (atomic on POSIX), so two workers computing the same entry at once both
succeed and a reader never sees half a file. They are read back with
`weights_only=True`, which cannot run code, and any entry that fails to load or
lacks a layer is treated as a miss and rewritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

from .cache_location import TARGETS_FOLDER

MEMORY_ENTRIES = 256  # a few MB each; bounds an engine that sees thousands of styles
ENTRY_SUFFIX = ".pt"
TEMP_PREFIX = ".tmp-"  # an entry being written; a writer killed mid-write leaves one


def target_key(
    image_digest: str,
    size: tuple[int, int],
    weights_identity: str,
    layers: tuple[str, ...],
    pooling: str,
    precision: str,
) -> str:
    payload = {
        "image": image_digest,
        "size": list(size),
        "weights": weights_identity,
        "layers": sorted(layers),
        "pooling": pooling,
        "precision": precision,
        "format": 1,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class StyleTargetCache:
    """memory -> disk -> compute, with counters a render reports."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.directory = Path(cache_dir) / TARGETS_FOLDER if cache_dir else None
        self._memory: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.computed = 0  # times the style network actually ran
        self.corrupt_entries = 0

    def get(
        self,
        key: str,
        layers: tuple[str, ...],
        device: torch.device,
        compute: Callable[[], dict[str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            return self._memory[key]
        grams = self._read_disk(key, layers)
        if grams is not None:
            self.hits += 1
        else:
            self.misses += 1
            self.computed += 1
            grams = {name: g.detach().float() for name, g in compute().items()}
            self._write_disk(key, grams)
        grams = {name: g.to(device) for name, g in grams.items()}
        self._remember(key, grams)
        return grams

    def _remember(self, key: str, grams: dict[str, torch.Tensor]) -> None:
        self._memory[key] = grams
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    def entry_path(self, key: str) -> Path | None:
        """Where the disk entry of `key` is (whether or not it exists); None without a disk cache."""
        if self.directory is None:
            return None
        return self.directory / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def _read_disk(self, key: str, layers: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
        path = self.entry_path(key)
        if path is None or not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(data, dict) or not all(
                isinstance(data.get(name), torch.Tensor) and torch.isfinite(data[name]).all()
                for name in layers
            ):
                raise ValueError("incomplete entry")
        except Exception:
            # Truncated by a crash, or damaged: drop it and recompute.
            self.corrupt_entries += 1
            path.unlink(missing_ok=True)
            return None
        return {name: data[name] for name in layers}

    def _write_disk(self, key: str, grams: dict[str, torch.Tensor]) -> None:
        path = self.entry_path(key)
        if path is None:
            return
        tmp: str | None = None
        # Serialised in memory first: torch.save reports a failed write to a file
        # as a RuntimeError from its zip writer, which the except below would miss.
        buffer = io.BytesIO()
        torch.save({name: g.cpu() for name, g in grams.items()}, buffer)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=ENTRY_SUFFIX)
            with os.fdopen(fd, "wb") as handle:
                handle.write(buffer.getbuffer())
            os.replace(tmp, path)
        except OSError:
            # A full or read-only cache disk must not fail the render: the
            # targets stay in memory for this engine.
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def clear(self) -> int:
        """Delete every disk entry, and the temp files of killed writers; returns
        how many entries were removed. A writer still at work only loses its
        entry (its rename fails, which it ignores)."""
        self._memory.clear()
        if self.directory is None or not self.directory.exists():
            return 0
        removed = 0
        for path in self.directory.rglob(f"*{ENTRY_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed += not path.name.startswith(TEMP_PREFIX)
        return removed

    def disk_usage(self) -> tuple[int, int, int]:
        """(entries, bytes, entries that are not whole) on disk; temp files are not entries."""
        if self.directory is None or not self.directory.exists():
            return 0, 0, 0
        files = [path for path in self.directory.rglob(f"*{ENTRY_SUFFIX}") if not path.name.startswith(TEMP_PREFIX)]
        return len(files), sum(f.stat().st_size for f in files), sum(1 for f in files if not entry_is_whole(f))


def entry_is_whole(path: Path) -> bool:
    """Whether a disk entry ends as torch.save's zip does (its end-of-directory
    record, "PK\\x05\\x06", in the last bytes). A truncated or overwritten entry
    fails to load and is computed again, which costs a render little; but
    counted as cached, the plan and `nst cache info` promised time it would not
    save. Reads 64 bytes, not the entry."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(path.stat().st_size - 64, 0))
            return b"PK\x05\x06" in handle.read()
    except OSError:
        return False
