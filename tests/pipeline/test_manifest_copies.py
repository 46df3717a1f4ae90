"""Two jobs with one job id: byte-for-byte copies render once, under the original's
name; so does one job that two entries ask for under one name. The same render
under two names is reported, saying what is repeated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from manifest_helpers import load, make_gallery
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipeline.errors import ManifestError
from pipeline.manifest_duplicates import COPY_NOTES
from pipeline.outputs import JOB_ID_KEY

FOLDER = """
    jobs:
      - contents: photos/
        styles: [images/style/s1.jpg, images/style/s2.jpg]
    """


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """images/content/{a,b}.jpg, images/style/{s1,s2,s3}.jpg (make_gallery)."""
    return make_gallery(tmp_path)


def photos(gallery: Path, *names: str) -> None:
    """photos/NAME for each name: the first is a photo, the rest are copies of it."""
    (gallery / "photos").mkdir(exist_ok=True)
    shutil.copy(gallery / "images/content/a.jpg", gallery / "photos" / names[0])
    for name in names[1:]:
        shutil.copy(gallery / "photos" / names[0], gallery / "photos" / name)


def outputs(manifest) -> list[tuple[str, str, str]]:
    return [(job.content_label, job.style_label, job.output_name) for job in manifest.jobs]


@pytest.mark.parametrize(("original", "copy"), [
    ("chelsea.jpg", "chelsea (1).jpg"),  # " " sorts before ".": the copy is listed first
    ("IMG_1.jpg", "IMG_1 copy.jpg"),
    ("IMG_1.jpg", "Copy of IMG_1.jpg"),  # the copy is first alphabetically
    ("IMG_1.jpg", "IMG_1-1.jpg"),
])
def test_adding_a_copy_keeps_the_originals_jobs_and_names(gallery: Path, original: str, copy: str) -> None:
    photos(gallery, original)
    before = load(gallery, FOLDER)
    assert (before.notices, before.copies) == ((), ())
    photos(gallery, original, copy)
    after = load(gallery, FOLDER)
    assert outputs(after) == outputs(before)
    assert after.jobs == before.jobs  # ids, files, labels and sources too
    assert {job.content for job in after.jobs} == {str(gallery / "photos" / original)}
    stem = Path(original).stem
    assert after.copies == (f"photos/{copy} has the same bytes as photos/{original}: its jobs render once, as {stem}",)


def _plant_render(manifest, job) -> None:
    """What a finished render leaves for the job: a whole PNG that names its id."""
    info = PngInfo()
    info.add_text(JOB_ID_KEY, job.job_id)
    manifest.output_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(manifest.output_dir / job.output_name, pnginfo=info)


def test_a_copy_under_a_shorter_name_leaves_renders_already_made_under_their_names(gallery: Path) -> None:
    photos(gallery, "sunset_beach.jpg")
    before = load(gallery, FOLDER)
    _plant_render(before, before.jobs[0])  # s1 rendered; s2 not yet
    photos(gallery, "sunset_beach.jpg", "a.jpg")
    after = load(gallery, FOLDER)
    # Both jobs stay with the photo that has a render: not one row per name on the sheet.
    assert after.jobs == before.jobs
    assert after.copies == ("photos/a.jpg has the same bytes as photos/sunset_beach.jpg: its jobs render once, "
                            "as sunset_beach",)
    # Before anything rendered, the shorter name is the original, as ever.
    (before.output_dir / before.jobs[0].output_name).unlink()
    assert {job.content_label for job in load(gallery, FOLDER).jobs} == {"a"}


def test_the_shortest_name_is_the_original_whatever_the_order_of_entries(gallery: Path) -> None:
    photos(gallery, "chelsea.jpg", "chelsea (1).jpg")
    entry = "  - content: photos/{}\n    style: images/style/s1.jpg\n"
    for first, second in [("chelsea.jpg", "chelsea (1).jpg"), ("chelsea (1).jpg", "chelsea.jpg")]:
        manifest = load(gallery, "jobs:\n" + entry.format(first) + entry.format(second))
        [job] = manifest.jobs
        assert job.content_label == "chelsea" and job.output_name == f"chelsea--s1-{job.job_id}.png"
        assert job.source == f"jobs[{[first, second].index('chelsea.jpg')}]"
        assert manifest.copies == ("photos/chelsea (1).jpg has the same bytes as photos/chelsea.jpg: "
                                    "its jobs render once, as chelsea",)


def test_names_of_one_length_keep_the_first_alphabetically(gallery: Path) -> None:
    shutil.copy(gallery / "images/style/s1.jpg", gallery / "images/style/s0.jpg")
    manifest = load(gallery, "jobs:\n  - content: images/content/a.jpg\n"
                             "    styles: [images/style/s1.jpg, images/style/s0.jpg]\n")
    assert [job.style_label for job in manifest.jobs] == ["s0"]
    assert manifest.copies == ("images/style/s1.jpg has the same bytes as images/style/s0.jpg: "
                                "its jobs render once, as s0",)


def test_a_copied_init_image_is_a_copy_too(gallery: Path) -> None:
    # The job id hashes the init image's bytes, so these two entries make one render.
    shutil.copy(gallery / "images/style/s3.jpg", gallery / "images/style/s3 (1).jpg")
    entry = "  - content: images/content/a.jpg\n    style: images/style/s1.jpg\n    settings: {{init: '{}'}}\n"
    manifest = load(gallery, "jobs:\n" + entry.format("images/style/s3 (1).jpg") + entry.format("images/style/s3.jpg"))
    [job] = manifest.jobs
    assert job.settings.init == str(gallery / "images/style/s3.jpg") and job.source == "jobs[1]"
    assert manifest.copies == ("images/style/s3 (1).jpg has the same bytes as images/style/s3.jpg: "
                                "its jobs render once, as s3",)


def problem_lines(gallery: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    return str(caught.value).splitlines()


def test_one_render_under_two_names_names_both(gallery: Path) -> None:
    # It said "duplicate output 'cat-<id>.png' (also made by jobs[0])", a file jobs[0] does not make.
    lines = problem_lines(gallery, """
        jobs:
          - content: images/content/a.jpg
            style: images/style/s1.jpg
          - content: images/content/a.jpg
            settings: {seed: 0}
            style: images/style/s1.jpg
            name: cat
        """)
    assert lines == ["m.yaml:4: jobs[1]: renders the same image as jobs[0] (a, s1, same settings) "
                     "under another name ('cat', not 'a--s1'); give it once"]


def test_a_swept_render_asked_for_again_names_the_sweep_value(gallery: Path) -> None:
    lines = problem_lines(gallery, """
        jobs:
          - content: images/content/a.jpg
            style: images/style/s1.jpg
            sweep: {style_weight: [10, 5]}
          - content: images/content/a.jpg
            style: images/style/s1.jpg
        """)
    assert lines == ["m.yaml:5: jobs[1]: renders the same image as jobs[0] with style_weight=5 (a, s1, same settings) "
                     "under another name ('a--s1', not 'a--s1--style_weight=5'); "
                     "leave style_weight=5 out of jobs[0]'s sweep, or this entry out"]


def test_a_sweep_through_the_default_of_a_pair_the_grid_has_points_at_the_sweep(gallery: Path) -> None:
    lines = problem_lines(gallery, """
        jobs:
          - {contents: images/content/a.jpg, styles: images/style/s1.jpg}
          - content: images/content/a.jpg
            style: images/style/s1.jpg
            sweep: {style_weight: [1, 5, 25]}
        """)
    assert lines == ["m.yaml:5: jobs[1].sweep: the point style_weight=5 renders the same image as jobs[0] "
                     "(a, s1, same settings), which makes it as 'a--s1'; leave that value out of the sweep"]


def test_one_job_that_two_entries_ask_for_renders_once_with_a_notice(gallery: Path) -> None:
    # It stopped the run: "duplicate output 'a--s1-<id>.png' (also made by jobs[0]); give it once".
    pair = "  - content: images/content/a.jpg\n    style: images/style/s1.jpg\n"
    manifest = load(gallery, "jobs:\n" + pair + pair)
    assert manifest.jobs == load(gallery, "jobs:\n" + pair).jobs  # jobs[0]'s, source and all
    assert manifest.notices == ("jobs[1] asks again for a job that jobs[0] already makes (a × s1); it renders once",)


def test_a_folder_and_a_glob_that_reach_the_same_photos_give_one_notice_for_them_all(gallery: Path) -> None:
    # A photo moved into a folder that another entry already globs must not stop a nightly run,
    # nor print a line per photo.
    manifest = load(gallery, """
        jobs:
          - {contents: [images/content/], styles: [images/style/s1.jpg]}
          - {contents: ["images/content/*.jpg"], styles: [images/style/s1.jpg, images/style/s2.jpg]}
        """)
    assert [(job.content_label, job.style_label, job.source) for job in manifest.jobs] == [
        ("a", "s1", "jobs[0]"), ("b", "s1", "jobs[0]"), ("a", "s2", "jobs[1]"), ("b", "s2", "jobs[1]")]
    assert manifest.notices == ("jobs[1] asks again for 2 jobs that jobs[0] already makes (e.g. a × s1); "
                                "each renders once",)


def test_the_same_images_under_other_names_are_one_line_per_pair_of_entries(gallery: Path) -> None:
    # It was a line per photo: 500 of them for a folder of 500.
    lines = problem_lines(gallery, """
        jobs:
          - {contents: [images/content/], styles: [images/style/s1.jpg]}
          - {contents: [images/content/], styles: [images/style/s1.jpg], name: "{style}/{content}"}
          - {contents: [images/content/], styles: [images/style/s1.jpg], sweep: {style_weight: [1, 5]}}
        """)
    assert lines == [
        "m.yaml:3: jobs[1]: renders 2 images that jobs[0] also renders, under other names "
        "(e.g. a, s1, same settings: 's1/a', not 'a--s1'); give them once",
        "m.yaml:4: jobs[2].sweep: the point style_weight=5 renders 2 images that jobs[0] also renders "
        "(e.g. a, s1, same settings, which jobs[0] makes as 'a--s1'); leave that value out of the sweep"]


@pytest.mark.parametrize(("copies", "shown"), [(COPY_NOTES + 1, COPY_NOTES + 1), (COPY_NOTES + 3, COPY_NOTES)])
def test_the_first_copy_notes_are_shown_and_the_rest_counted_unless_every_one_is_asked_for(
        gallery: Path, copies: int, shown: int) -> None:
    photos(gallery, "p.jpg", *(f"p ({n}).jpg" for n in range(1, copies + 1)))
    manifest = load(gallery, FOLDER)
    assert len(manifest.copies) == copies and len(manifest.jobs) == 2
    assert manifest.shown_notices(every=True) == list(manifest.copies)
    counted = [f"and {copies - shown} more files copy others; `nst plan --all` lists every one"] if shown < copies else []
    # A line that counts one more note takes a line too: that one is shown instead.
    assert manifest.shown_notices() == [*manifest.copies[:shown], *counted]


@pytest.mark.parametrize("spec", ["photos/", "photos/*.jpg"])
def test_a_symlink_beside_its_file_is_that_file_once_without_a_note(gallery: Path, spec: str) -> None:
    photos(gallery, "cat.jpg")
    (gallery / "photos" / "link.jpg").symlink_to("cat.jpg")
    manifest = load(gallery, f"jobs:\n  - contents: {spec}\n    style: images/style/s1.jpg\n")
    assert [job.content_label for job in manifest.jobs] == ["cat"]
    assert (manifest.notices, manifest.copies) == ((), ())

