"""Debian's Chromium, headless, for the contact-sheet tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (run `make browser`)")
    pytest.skip("chromium is not installed (run `make browser`)")


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    # Flags keep a headless run quiet and offline: no sandbox (CI runs as root),
    # no GPU, no first-run or sync machinery, a throwaway profile.
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done
