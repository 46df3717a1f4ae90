"""`**` globs: what glob.glob matches, without its walk round a symlink loop."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest
import yaml
from cli_helpers import SAMPLES, explain, nst

from pipeline import glob_walk
from pipeline.glob_walk import walk_glob
from pipeline.manifest_images import expand_images

CHELSEA = SAMPLES / "content" / "chelsea.jpg"


def _tree(root: Path) -> Path:
    for name in ("a/x.jpg", "a/b/y.JPG", "a/b/c/z.png", "a/.hidden/h.jpg", "a/.dot.jpg", "Trip [2024]/t.jpg",
                 "a/b/notes.txt", "top.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return root


@pytest.mark.parametrize("pattern", [
    "**/*", "**/*.jpg", "a/**/*", "a/**/*.[jJ][pP][gG]", "a/**/c/*", "**/b/**/*.png", "a/**",
    "**/.hidden/*", "a/.*", "Trip [[]2024]/**/*", "**/t.jpg", "a/b/**/*",
])
def test_matches_what_glob_glob_matches(tmp_path, pattern):
    root = _tree(tmp_path)
    expected = sorted(root / m for m in glob.glob(pattern, root_dir=root, recursive=True))
    assert sorted(walk_glob(pattern, root)) == expected
    absolute = str(root / pattern)
    assert sorted(walk_glob(absolute, Path("/nowhere"))) == sorted(map(Path, glob.glob(absolute, recursive=True)))


def test_a_link_to_a_parent_folder_is_walked_once(tmp_path, monkeypatch):
    # glob.glob went round such a loop until the path was too long; with two
    # links (the test below) a plan hung for minutes and grew past 2 GB.
    folder = tmp_path / "photos" / "a"
    folder.mkdir(parents=True)
    shutil.copyfile(CHELSEA, folder / "chelsea.jpg")
    (folder / "up").symlink_to("..")
    listed = []
    names = glob_walk._names
    monkeypatch.setattr(glob_walk, "_names", lambda folder: listed.append(folder.resolve()) or names(folder))
    found, problem = expand_images("photos/**/*", tmp_path)
    assert problem is None and found == [folder / "chelsea.jpg"]
    assert sorted(listed) == [folder.parent, folder], listed  # each folder read once


def test_a_linked_folder_of_photos_is_still_found(tmp_path):
    library = tmp_path / "disk2" / "2024"
    library.mkdir(parents=True)
    shutil.copyfile(CHELSEA, library / "cat.jpg")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "2024").symlink_to(library)
    found, problem = expand_images("photos/**/*.jpg", tmp_path)
    assert problem is None and found == [library / "cat.jpg"]


def test_a_glob_over_too_many_folders_is_one_line(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.setattr(glob_walk, "MAX_FOLDERS", 3)
    assert expand_images("**/*.jpg", tmp_path) == (
        [], "glob '**/*.jpg' walked over 3 folders: start it from a smaller folder")


def test_nst_plan_on_two_links_up_finishes(tmp_path):
    folder = tmp_path / "ld" / "a"
    folder.mkdir(parents=True)
    shutil.copyfile(CHELSEA, folder / "chelsea.jpg")
    (folder / "up").symlink_to("..")
    (folder / "up2").symlink_to("../..")
    manifest = tmp_path / "ld.yaml"
    manifest.write_text(yaml.safe_dump({"settings": {"size": 32, "iterations": 2}, "jobs": [
        {"contents": ["ld/**/*"], "style": str(SAMPLES / "style" / "starry_night.jpg")}]}))
    result = nst("plan", manifest, cwd=tmp_path, timeout=60)
    assert result.returncode == 0 and "1 to render" in result.stdout, explain(result)
