"""Shared test fixtures. Every test gets its own style-target cache, so nothing
reads or writes ~/.cache and no test depends on another's leftovers."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_IMAGES = REPO / "manifests" / "images"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("nst-cache")
    monkeypatch.setenv("NST_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def signals_as_they_were():
    """Restore the signal dispositions and mask after each test. A worker's
    entry point run in-process (test_worker_env) ignores SIGINT, SIGTERM and
    SIGHUP, as workers do; a later test's child process inherits an ignored
    SIGINT, and Python then installs no Ctrl-C handler in it: that child never
    stopped. Which tests share a process varies under pytest-xdist."""
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {signum: signal.getsignal(signum) for signum in watched}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    for signum, handler in saved.items():
        if handler is not None:  # None: set outside Python, nothing to put back
            signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@pytest.fixture
def gallery_dir(tmp_path) -> Path:
    """A copy of the sample images: content/*.jpg and style/*.jpg."""
    target = tmp_path / "images"
    shutil.copytree(SAMPLE_IMAGES, target)
    return target
