"""Helpers the manifest tests import: a tiny image gallery and manifest writers."""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image

from pipeline.manifest import Manifest, load_manifest

PAIR = """\
jobs:
  - content: images/content/a.jpg
    style: images/style/s1.jpg
"""


def make_gallery(tmp_path: Path) -> Path:
    """images/content/{a,b}.jpg, images/style/{s1,s2,s3}.jpg, and a folder with no images."""
    colours = {"content/a": "red", "content/b": "green", "style/s1": "blue", "style/s2": "white", "style/s3": "black"}
    for name, colour in colours.items():
        path = tmp_path / "images" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 32), colour).save(path)
    (tmp_path / "images" / "empty").mkdir()
    (tmp_path / "images" / "empty" / "notes.txt").write_text("not an image")
    return tmp_path


def write(folder: Path, text: str, name: str = "m.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(folder: Path, text: str) -> Manifest:
    return load_manifest(write(folder, text))
