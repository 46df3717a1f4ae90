"""Shared test fixtures. Every test gets its own style-target cache, so nothing
reads or writes ~/.cache and no test depends on another's leftovers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_IMAGES = REPO / "manifests" / "images"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("nst-cache")
    monkeypatch.setenv("NST_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def gallery_dir(tmp_path) -> Path:
    """A copy of the sample images: content/*.jpg and style/*.jpg."""
    target = tmp_path / "images"
    shutil.copytree(SAMPLE_IMAGES, target)
    return target
