"""Manifest parsing and expansion of good manifests, on real (tiny) image files in tmp_path.
Bad manifests, unreadable files and finding a manifest by name: test_manifest_errors.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from manifest_helpers import PAIR, load, make_gallery, write

from nst_engine.settings import RenderSettings
from pipeline.errors import ManifestError
from pipeline.manifest import RunOptions, load_manifest


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """images/content/{a,b}.jpg, images/style/{s1,s2,s3}.jpg, and a folder with no images."""
    return make_gallery(tmp_path)


# -- good manifests -------------------------------------------------------------


def test_cross_product_pairs_globs_folders_and_blends(gallery: Path) -> None:
    manifest = load(
        gallery,
        """
        jobs:
          - contents: [images/content/a.jpg, "images/content/*.jpg", images/content/]
            styles: [images/style/s1.jpg, images/style/s2.jpg]
          - content: images/content/b.jpg
            style: images/style/s3.jpg
          - content: images/content/a.jpg
            styles:
              - blend: [images/style/s1.jpg, images/style/s2.jpg]
                weights: [0.7, 0.3]
              - blend: [images/style/s2.jpg, images/style/s3.jpg]
                name: cool
        """,
    )
    pairs = [(j.content_label, j.style_label, j.source) for j in manifest.jobs]
    assert pairs == [
        ("a", "s1", "jobs[0]"),  # a.jpg named three ways counts once
        ("a", "s2", "jobs[0]"),
        ("b", "s1", "jobs[0]"),
        ("b", "s2", "jobs[0]"),
        ("b", "s3", "jobs[1]"),
        ("a", "s1+s2", "jobs[2]"),
        ("a", "cool", "jobs[2]"),
    ]
    blend = manifest.jobs[5]
    assert blend.styles == (str(gallery / "images/style/s1.jpg"), str(gallery / "images/style/s2.jpg"))
    assert blend.settings.style_blend == (0.7, 0.3)
    assert manifest.jobs[6].settings.style_blend == ()
    assert all(Path(j.content).is_absolute() for j in manifest.jobs)
    assert manifest.run == RunOptions()


def test_sweeps_make_a_grid_and_entry_sweeps_override_keys(gallery: Path) -> None:
    manifest = load(
        gallery,
        """
        sweep:
          style_weight: [1.0e+3, 1.0e+5]
          tv_weight: [0, 1]
        jobs:
          - content: images/content/a.jpg
            style: images/style/s1.jpg
            sweep: {content_weight: [1, 10, 100]}
          - content: images/content/b.jpg
            style: images/style/s1.jpg
            sweep: {tv_weight: [5]}
        """,
    )
    first = [j for j in manifest.jobs if j.source == "jobs[0]"]
    second = [j for j in manifest.jobs if j.source == "jobs[1]"]
    assert len(first) == 2 * 2 * 3 and len(second) == 2 * 1
    assert first[0].variant == "style_weight=1000,tv_weight=0,content_weight=1"
    assert {(j.settings.style_weight, j.settings.tv_weight, j.settings.content_weight) for j in first} == {
        (sw, tv, cw) for sw in (1e3, 1e5) for tv in (0, 1) for cw in (1, 10, 100)
    }
    assert {j.settings.tv_weight for j in second} == {5.0}
    assert len({j.job_id for j in manifest.jobs}) == len(manifest.jobs)


def test_settings_precedence(gallery: Path) -> None:
    manifest = load(
        gallery,
        """
        preset: preview          # size 256, iterations 100
        settings: {iterations: 60, seed: 3}
        jobs:
          - {content: images/content/a.jpg, style: images/style/s1.jpg}
          - {content: images/content/a.jpg, style: images/style/s2.jpg, preset: gatys}
          - content: images/content/b.jpg
            style: images/style/s1.jpg
            preset: gatys
            settings: {iterations: 7}
          - content: images/content/b.jpg
            style: images/style/s2.jpg
            settings: {iterations: 7}
            sweep: {iterations: [9]}
        """,
    )
    got = [(j.settings.size, j.settings.iterations, j.settings.seed) for j in manifest.jobs]
    assert got == [(256, 60, 3), (512, 500, 3), (512, 7, 3), (256, 9, 3)]
    assert manifest.jobs[0].settings.style_weight == RenderSettings().style_weight  # untouched


def test_folders_and_globs_list_numbered_files_in_number_order(gallery: Path) -> None:
    photos = gallery / "images" / "numbered"
    photos.mkdir()
    for name in ("c10.jpg", "c2.jpg", "c1.jpg", "c9.jpg", "Cb.jpg", "ca.jpg"):
        shutil.copy(gallery / "images/content/a.jpg", photos / name)
        (photos / name).write_bytes((photos / name).read_bytes() + name.encode())  # not byte copies
    for spec in ("images/numbered/", "images/numbered/[cC]*.jpg"):
        manifest = load(gallery, f"jobs:\n  - contents: '{spec}'\n    style: images/style/s1.jpg\n")
        # As a file manager lists them; plain text order was c1, c10, c2, c9, and
        # put capitals first (Cb before ca).
        assert [j.content_label for j in manifest.jobs] == ["c1", "c2", "c9", "c10", "ca", "Cb"], spec


def test_a_name_with_glob_characters_that_is_there_as_written_is_that_file_or_folder(gallery: Path) -> None:
    photos = gallery / "Trip [2024]"
    photos.mkdir()
    for name in ("photo [1].jpg", "what?.jpg", "what1.jpg"):
        (photos / name).write_bytes((gallery / "images/content/a.jpg").read_bytes() + name.encode())
    labels = {}
    for spec in ("'Trip [2024]/photo [1].jpg'", "'Trip [2024]/what?.jpg'", "'Trip [2024]/'", "'Trip [2024]/*.jpg'",
                 "'Trip [2024]/what?.*'"):
        manifest = load(gallery, f"jobs:\n  - contents: [{spec}]\n    style: images/style/s1.jpg\n")
        labels[spec] = [job.content_label for job in manifest.jobs]
    assert labels == {
        "'Trip [2024]/photo [1].jpg'": ["photo [1]"],
        "'Trip [2024]/what?.jpg'": ["what?"],  # not what1.jpg as well
        "'Trip [2024]/'": ["photo [1]", "what1", "what?"],
        "'Trip [2024]/*.jpg'": ["photo [1]", "what1", "what?"],  # the folder's brackets are its name
        "'Trip [2024]/what?.*'": ["what1", "what?"],  # no such file: a glob
    }


def test_a_glob_takes_an_image_extension_in_any_case(gallery: Path) -> None:
    camera = gallery / "camera"
    camera.mkdir()
    for name in ("IMG_0001.JPG", "IMG_0002.jpg", "IMG_0003.Jpeg"):
        (camera / name).write_bytes((gallery / "images/content/a.jpg").read_bytes() + name.encode())
    for spec, expected in (("camera/*.jpg", ["IMG_0001", "IMG_0002"]), ("camera/*.JPEG", ["IMG_0003"]),
                           ("camera/", ["IMG_0001", "IMG_0002", "IMG_0003"])):
        manifest = load(gallery, f"jobs:\n  - contents: {spec}\n    style: images/style/s1.jpg\n")
        assert [job.content_label for job in manifest.jobs] == expected, spec


def test_pictures_nst_does_not_read_are_passed_over_with_a_note(gallery: Path) -> None:
    # An iPhone's HEIC shots and a camera's raw files went missing without a word.
    phone = gallery / "phone"
    phone.mkdir()
    shutil.copy(gallery / "images/content/a.jpg", phone / "IMG_0001.jpg")
    for name in ("IMG_0002.HEIC", "IMG_0003.heic", "DSC_0004.dng", "IMG_0001.xmp", "notes.txt"):
        (phone / name).write_bytes(b"not read")
    for spec in ("phone/", "'phone/*'"):
        manifest = load(gallery, f"jobs:\n  - contents: {spec}\n    style: images/style/s1.jpg\n")
        assert [job.content_label for job in manifest.jobs] == ["IMG_0001"]
        assert manifest.notices == ("folders and globs passed over 2 .heic files and 1 .dng file: nst reads "
                                    ".jpg, .jpeg, .png, .webp, .bmp, .tif, .tiff, .gif (convert the others to JPEG "
                                    "or PNG to render them)",), spec
    (phone / "IMG_0001.jpg").unlink()
    with pytest.raises(ManifestError, match=r"folder 'phone/' holds no images \(.*\); it has 2 \.heic files and "
                                            r"1 \.dng file, which nst does not read: convert them to JPEG or PNG"):
        load(gallery, "jobs:\n  - contents: phone/\n    style: images/style/s1.jpg\n")


def test_a_named_symlink_that_leads_nowhere_says_so(gallery: Path) -> None:
    # `ls` lists these files; "no such file" sent users looking for a typo.
    (gallery / "loop_a.jpg").symlink_to("loop_b.jpg")
    (gallery / "loop_b.jpg").symlink_to("loop_a.jpg")
    (gallery / "moved.jpg").symlink_to("photos/cat.jpg")
    for name, reason in (("loop_a.jpg", "'loop_a.jpg' is a symlink loop"),
                         ("moved.jpg", "'moved.jpg' is a symlink to 'photos/cat.jpg', which is not there")):
        with pytest.raises(ManifestError, match=re.escape(reason)):
            load(gallery, f"jobs:\n  - content: {name}\n    style: images/style/s1.jpg\n")


def test_a_named_pipe_is_not_an_image_file_and_is_not_called_missing(gallery: Path) -> None:
    os.mkfifo(gallery / "photo.jpg")  # `ls` lists it: "no such file" sent users looking for a typo
    with pytest.raises(ManifestError, match=re.escape("'photo.jpg' is not a regular file (expected an image file)")):
        load(gallery, "jobs:\n  - content: photo.jpg\n    style: images/style/s1.jpg\n")


def test_paths_resolve_from_the_manifest_folder(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    text = """
        settings: {init: ../images/style/s3.jpg}
        jobs:
          - {content: ../images/content/a.jpg, style: ../images/style/s1.jpg}
        """
    manifest = load_manifest(write(gallery / "manifests", text, "demo.yaml"))
    assert manifest.path == gallery / "manifests" / "demo.yaml"
    assert manifest.output_dir == (gallery / "manifests" / "out" / "demo").resolve()
    assert manifest.jobs[0].content == str((gallery / "images/content/a.jpg").resolve())
    assert manifest.jobs[0].settings.init == str((gallery / "images/style/s3.jpg").resolve())
    text = "output: ../renders/x\n" + textwrap.dedent(text)
    other = load_manifest(write(gallery / "manifests", text, "other.yaml"))
    assert other.output_dir == (gallery / "renders" / "x").resolve()


def test_labels_variants_and_output_names_are_readable_and_carry_the_id(gallery: Path) -> None:
    manifest = load(
        gallery,
        """
        jobs:
          - content: images/content/a.jpg
            style: images/style/s1.jpg
            sweep: {style_weight: [1.0e+3]}
          - content: images/content/b.jpg
            style: images/style/s1.jpg
            name: "by style/{style}/{content} {variant}"
          - content: images/content/b.jpg
            styles: [{blend: [images/style/s1.jpg, images/style/s2.jpg]}]
        """,
    )
    swept, named, blend = manifest.jobs
    assert swept.variant == "style_weight=1000"
    assert swept.output_name == f"a--s1--style_weight=1000-{swept.job_id}.png"
    assert named.output_name == f"by_style/s1/b-{named.job_id}.png"
    assert blend.output_name == f"b--s1+s2-{blend.job_id}.png"
    assert len(swept.job_id) == 12


def test_run_options(gallery: Path) -> None:
    run = """
        run:
          devices: {devices}
          cluster: tcp://gpu-box:8786
          job_timeout: 3600
          batch_size: 4
          checkpoint_every: 50
        """
    for devices, expected in [
        ("cpu", ("cpu",)),
        ("'cuda:0,cuda:2'", ("cuda:0", "cuda:2")),
        ("cpu*2", ("cpu", "cpu")),
        ("[cuda:1, cuda:3]", ("cuda:1", "cuda:3")),
    ]:
        manifest = load(gallery, textwrap.dedent(run).replace("{devices}", devices) + PAIR)
        assert manifest.run == RunOptions(expected, "tcp://gpu-box:8786", 3600.0, 4, 50)


def test_job_ids_are_stable_and_follow_settings_and_image_bytes(gallery: Path) -> None:
    path = write(gallery, PAIR)
    first, again = load_manifest(path).jobs[0], load_manifest(path).jobs[0]
    assert first == again and first.job_id == again.job_id
    changed = load(gallery, "settings: {seed: 1}\n" + PAIR).jobs[0]
    assert changed.job_id != first.job_id
    style = gallery / "images/style/s1.jpg"
    data = bytearray(style.read_bytes())
    data[-3] ^= 0xFF  # same size: only the bytes differ
    style.write_bytes(bytes(data))
    os.utime(style, ns=(1, 1))  # a new mtime, whatever the filesystem's clock resolution
    assert load_manifest(path).jobs[0].job_id != first.job_id


def test_exponent_written_without_a_dot_or_a_sign_is_a_number(gallery: Path) -> None:
    # PyYAML (YAML 1.1) would hand us the texts '1e4' and '2.5e1', in settings, sweeps and run: alike.
    manifest = load(gallery, "settings: {style_weight: 1e5, learning_rate: 5e-2, style_scale: 1.5E0}\n"
                    "run: {job_timeout: 36e2}\nsweep: {tv_weight: [0, 1e-3], content_weight: [2.5e1, .5e1]}\n" + PAIR)
    assert sorted({job.settings.content_weight for job in manifest.jobs}) == [5.0, 25.0]
    assert manifest.jobs[0].settings.style_scale == 1.5
    assert [job.settings.style_weight for job in manifest.jobs] == [1e5] * 4
    assert manifest.jobs[0].settings.learning_rate == 0.05
    assert sorted({job.settings.tv_weight for job in manifest.jobs}) == [0, 1e-3]
    assert manifest.run.job_timeout == 3600


def test_whole_numbers_for_float_settings_make_the_same_job(gallery: Path) -> None:
    as_int = load(gallery, "settings: {style_weight: 1000}\n" + PAIR).jobs[0]
    as_float = load(gallery, "settings: {style_weight: 1000.0}\n" + PAIR).jobs[0]
    assert as_int.job_id == as_float.job_id
    assert isinstance(as_int.settings.style_weight, float)


def test_a_whole_number_written_with_an_exponent_or_a_dot_is_a_whole_number(gallery: Path) -> None:
    # The README promises `1e4` as a number; `iterations: 1e3` was "must be a whole number, got 1000.0".
    written = load(gallery, "settings: {iterations: 1e3, size: 6.4e1, seed: 7.0, scales: [3.2e1, 64.0]}\n"
                            "sweep: {lbfgs_history: [1e1]}\n" + PAIR)
    plain = load(gallery, "settings: {iterations: 1000, size: 64, seed: 7, scales: [32, 64]}\n"
                          "sweep: {lbfgs_history: [10]}\n" + PAIR)
    assert [job.job_id for job in written.jobs] == [job.job_id for job in plain.jobs]
    assert isinstance(written.jobs[0].settings.iterations, int) and written.jobs[0].settings.size == 64


def test_run_whole_numbers_take_an_exponent_or_a_dot_too(gallery: Path) -> None:
    manifest = load(gallery, "run: {checkpoint_every: 5e1, batch_size: 4.0}\n" + PAIR)
    assert (manifest.run.checkpoint_every, manifest.run.batch_size) == (50, 4)
    assert isinstance(manifest.run.checkpoint_every, int) and isinstance(manifest.run.batch_size, int)


def test_x_keys_hold_yaml_anchors(gallery: Path) -> None:
    manifest = load(
        gallery,
        """
        x-pair: &pair {content: images/content/a.jpg, style: images/style/s1.jpg}
        jobs:
          - <<: *pair
            settings: {seed: 1}
          - <<: *pair
            settings: {seed: 2}
        """,
    )
    assert [j.settings.seed for j in manifest.jobs] == [1, 2]


def test_importing_the_manifest_module_does_not_import_torch() -> None:
    code = "import pipeline.manifest, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def test_a_byte_for_byte_copy_renders_once_with_a_notice(gallery: Path) -> None:
    # A photo folder often holds a copy ("IMG_1 (1).jpg"). The job id hashes the
    # bytes, so the copy's jobs would be the same jobs: left out, with a notice.
    shutil.copy(gallery / "images" / "content" / "a.jpg", gallery / "images" / "content" / "z-copy.jpg")
    shutil.copy(gallery / "images" / "style" / "s1.jpg", gallery / "images" / "style" / "s9.jpg")
    manifest = load(
        gallery,
        """
        jobs:
          - contents: images/content/
            styles: [images/style/s1.jpg, images/style/s9.jpg, images/style/s2.jpg]
        """,
    )
    assert sorted((j.content_label, j.style_label) for j in manifest.jobs) == [
        ("a", "s1"), ("a", "s2"), ("b", "s1"), ("b", "s2")]
    assert manifest.copies == (
        "images/style/s9.jpg has the same bytes as images/style/s1.jpg: its jobs render once, as s1",
        "images/content/z-copy.jpg has the same bytes as images/content/a.jpg: its jobs render once, as a",
    )


def test_a_folder_named_by_its_date_is_a_folder_name_not_a_date(gallery: Path) -> None:
    # YAML 1.1 reads 2024-06-01 as a date.
    day = gallery / "2024-06-01"
    day.mkdir()
    shutil.copy(gallery / "images/content/a.jpg", day / "beach.jpg")
    manifest = load(gallery, "output: 2024-06-02\njobs:\n  - contents: 2024-06-01\n    style: images/style/s1.jpg\n")
    assert [Path(job.content) for job in manifest.jobs] == [(day / "beach.jpg").resolve()]
    assert manifest.output_dir == gallery / "2024-06-02"

