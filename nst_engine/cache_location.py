"""Where the style-target cache lives, and whether it can be used there.

Torch-free, so the render's parent process and `nst cache info` can ask
without loading the engine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TARGETS_FOLDER = "style-targets"


def default_cache_dir() -> Path:
    """$NST_CACHE_DIR, else $XDG_CACHE_HOME/nst, else ~/.cache/nst."""
    if os.environ.get("NST_CACHE_DIR"):
        return Path(os.environ["NST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nst"


def cache_problem(cache_dir: Path) -> str | None:
    """Why style targets cannot be kept under `cache_dir`, or None if they can.

    Found by doing what the cache does, creating its folder and a file in it:
    permission bits do not tell (root passes every access() check, and
    /proc refuses new files whatever they say). A cache that cannot be written
    only costs speed, since the engine then computes every style's targets
    afresh, so the caller warns rather than stops.
    """
    folder = Path(cache_dir) / TARGETS_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None
