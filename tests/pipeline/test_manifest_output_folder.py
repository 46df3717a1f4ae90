"""An output folder inside an input folder: folders and globs leave out what lies
inside it, or each night's renders (and thumbs/) become the next night's photos.
Real files in tmp_path; one end-to-end render with the real `nst`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import SAMPLES, TINY, explain, nst, render, write_manifest
from manifest_helpers import load, make_gallery
from PIL import Image

from pipeline.errors import ManifestError


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """images/content/{a,b}.jpg, images/style/{s1,s2,s3}.jpg (make_gallery), and
    pics/ holding photo.jpg."""
    make_gallery(tmp_path)
    (tmp_path / "pics").mkdir()
    shutil.copy(tmp_path / "images/style/s3.jpg", tmp_path / "pics/photo.jpg")
    return tmp_path


def fake_run(output: Path, manifest) -> None:
    """What a run leaves in its output folder: each render (a PNG, at its own name,
    maybe in a subfolder), a sidecar, and a JPEG thumbnail in thumbs/."""
    for job in manifest.jobs:
        image = output / job.output_name
        image.parent.mkdir(parents=True, exist_ok=True)
        # New pixels: a byte-for-byte copy of an input would be left out as a copy.
        Image.new("RGB", (40, 32), "orange").save(image)
        image.with_suffix(".json").write_text("{}")
        (output / "thumbs").mkdir(exist_ok=True)
        Image.new("RGB", (40, 32), "purple").save(output / "thumbs" / f"{job.job_id}.jpg")


GLOBS = """
    output: pics/styled
    jobs:
      - contents: ["pics/**/*"]
        style: images/style/s1.jpg
      - content: images/content/a.jpg
        styles: ["pics/**/*.jpg"]
        name: "{style}/{content}"
    """


def test_globs_over_the_output_folder_leave_last_nights_renders_out(gallery: Path) -> None:
    first = load(gallery, GLOBS)
    assert [(j.content_label, j.style_label) for j in first.jobs] == [("photo", "s1"), ("a", "photo")]
    fake_run(gallery / "pics/styled", first)  # 2 renders (one in photo/), 2 thumbnails
    again = load(gallery, GLOBS)
    assert again.jobs == first.jobs
    assert again.notices == ("4 images inside the output folder 'pics/styled' left out of folders and globs, "
                             "so renders never become inputs (name a file to use it)",)


def test_a_folder_that_is_the_output_folder_holds_no_inputs(gallery: Path) -> None:
    text = "output: pics\njobs:\n  - contents: [images/content/, pics/]\n    style: images/style/s1.jpg\n"
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value) == ("m.yaml:3: jobs[0].contents[1]: folder 'pics/' holds no images outside the "
                                 "output folder 'pics' (1 inside it left out: renders are never inputs)")


def test_the_default_output_folder_is_left_out_too(gallery: Path) -> None:
    text = "jobs:\n  - contents: ['**/a[.-]*']\n    style: images/style/s1.jpg\n"
    first = load(gallery, text)
    fake_run(gallery / "out/m", first)  # out/m/a--s1-<id>.png
    again = load(gallery, text)
    assert again.jobs == first.jobs and len(again.notices) == 1
    assert again.notices[0].startswith("1 image inside the output folder 'out/m' left out")


def test_a_file_or_folder_named_inside_the_output_folder_is_used(gallery: Path) -> None:
    # Named on purpose, not swept up by a glob: restyling a render is a fair wish,
    # and `output: .` must not hide every photo folder below the manifest.
    made = load(gallery, "output: .\njobs:\n  - content: images/content/a.jpg\n    style: images/style/s1.jpg\n")
    fake_run(gallery, made)
    [render_png] = [job.output_name for job in made.jobs]
    manifest = load(gallery, f"""
        output: .
        jobs:
          - contents: [images/content/, "{render_png}"]
            style: "images/style/s2.*"
        """)
    assert [(j.content_label, j.style_label) for j in manifest.jobs] == [
        ("a", "s2"), ("b", "s2"), (Path(render_png).stem, "s2")]
    assert manifest.notices == ()


@pytest.mark.slow
def test_a_second_run_renders_nothing_new_from_the_first_runs_outputs(tmp_path: Path) -> None:
    # The reviewer's nightly run: output inside the folder the contents glob.
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "content" / "chelsea.jpg", photos)
    manifest = write_manifest(tmp_path / "m.yaml", ["photos/**/*.*"], [SAMPLES / "style" / "night_cafe.jpg"],
                              output="photos/styled", settings=TINY)
    first = render(manifest)
    assert first.returncode == 0, explain(first)
    assert list((photos / "styled" / "thumbs").glob("*.jpg")), "the run made no thumbnail to leave out"
    planned = nst("plan", manifest, cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert "0 to render, 1 already done" in planned.stdout, explain(planned)
    # The render, its thumbnail, and the sheet's thumbnails of the photo and the painting.
    assert "note: 4 images inside the output folder 'photos/styled' left out" in planned.stdout, explain(planned)
    second = render(manifest)
    assert second.returncode == 0, explain(second)
    assert "INFO m.yaml: note: 4 images inside the output folder" in second.stderr, explain(second)
