"""Output names: slugs of labels in any script, and the `name:` template's edge cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from manifest_helpers import PAIR, load, make_gallery

from pipeline.errors import ManifestError
from pipeline.jobs import format_value, slug
from pipeline.manifest_inputs import render_name


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    return make_gallery(tmp_path)


# An existing gallery renders again wherever an output's name changes, so ASCII
# labels must keep exactly the names they always had.
ASCII_NAMES = [
    ("chelsea", "chelsea"),
    ("IMG_1 (1)", "IMG_1_1"),
    ("<img src=x onerror=alert(1)>", "img_src=x_onerror=alert_1"),
    ("..hidden.", "hidden"),
    ("a/b\\c", "a_b_c"),
    ("x" * 80, "x" * 60),
    ("x" * 59 + " tail", "x" * 59),  # cut at 60, it would end in "_"
    ("x" * 59 + ".tail", "x" * 59),
    ("", "x"),
    ("style_weight=1,tv_weight=0.5", "style_weight=1_tv_weight=0.5"),
    ("photo #2 [final]", "photo_2_final"),
    ("a__b  c", "a__b_c"),
    ("-dash", "-dash"),
]


@pytest.mark.parametrize(("label", "expected"), ASCII_NAMES)
def test_ascii_labels_keep_their_names(label: str, expected: str) -> None:
    assert slug(label) == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("猫", "猫"),
        ("jp/猫", "jp_猫"),
        ("Katze ü 1", "Katze_ü_1"),
        ("Katze u\u0308", "Katze_ü"),  # macOS's decomposed ü: NFC, one name for one photo
        ("हिन्दी", "हिन्दी"),  # combining vowel signs stay
        (".猫", "猫"),
        ("é" * 59 + " ü", "é" * 59),  # cut at 60, it would end in "_"
        ("a\x00b\nc\u202ed", "a_b_c_d"),  # control and bidi-override characters go
    ],
)
def test_labels_in_any_script_stay_readable(label: str, expected: str) -> None:
    assert slug(label) == expected


def test_a_long_label_fits_a_file_name_in_bytes() -> None:
    for char in ("猫", "\U00020000"):  # 3 and 4 bytes in UTF-8
        name = slug(char * 100)
        assert set(name) == {char} and len(name) <= 60
        # With "-<id>.png" and the atomic writer's temporary affixes, under 255 bytes.
        assert len(name.encode()) <= 200


def test_non_latin_file_names_give_readable_output_names(gallery: Path) -> None:
    (gallery / "jp").mkdir()
    shutil.copy(gallery / "images/content/a.jpg", gallery / "jp/猫.jpg")
    shutil.copy(gallery / "images/content/b.jpg", gallery / "jp/Katze ü 1.jpg")
    manifest = load(gallery, "jobs:\n  - contents: jp/\n    style: images/style/s1.jpg\n")
    names = sorted(job.output_name.rsplit("-", 1)[0] for job in manifest.jobs)
    assert names == ["Katze_ü_1--s1", "猫--s1"]


def test_a_png_extension_in_the_name_is_not_doubled(gallery: Path) -> None:
    manifest = load(gallery, PAIR + '    name: "{content}.png"\n')
    job = manifest.jobs[0]
    assert job.output_name == f"a-{job.job_id}.png"


def test_another_image_extension_in_the_name_is_refused(gallery: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load(gallery, PAIR + '    name: "{content}.jpg"\n')
    assert str(caught.value) == (
        "m.yaml:4: jobs[0].name: outputs are PNG files named NAME-<job id>.png; leave '.jpg' out of '{content}.jpg'"
    )


def test_a_name_that_fills_to_nothing_falls_back_to_the_default(gallery: Path) -> None:
    # "{variant}" is empty without a sweep; "x-<id>.png" would say nothing.
    manifest = load(gallery, PAIR + '    name: "{variant}"\n  - content: images/content/b.jpg\n'
                    '    style: images/style/s1.jpg\n    name: "{variant}"\n    sweep: {seed: [1]}\n')
    plain, swept = manifest.jobs
    assert plain.output_name == f"a--s1-{plain.job_id}.png"
    assert swept.output_name == f"seed=1-{swept.job_id}.png"


@pytest.mark.parametrize("template", ["☆", "_", "  ", "---", ".png", "./", "{content}/☆"])
def test_a_name_with_no_letter_or_digit_takes_the_default(gallery: Path, template: str) -> None:
    # They gave "x-<id>.png" ("☆", "_"), or were refused as leaving the output folder (".png").
    job = load(gallery, PAIR + f'    name: "{template}"\n').jobs[0]
    expected = "a" if template.startswith("{content}") else "a--s1"
    assert job.output_name == f"{expected}-{job.job_id}.png"


def test_every_ascii_character_is_kept_or_replaced_as_before() -> None:
    # ASCII labels take a fast path; it must name files exactly as the general
    # one did, or outputs already on disk get new names and render again.
    for code in range(128):
        char = chr(code)
        kept = char.isalnum() or char in "._=+-"
        assert slug(f"a{char}b") == (f"a{char}b" if kept else "a_b"), repr(char)
    assert slug("a \t\x7f b") == "a_b" and slug("..a..") == "a" and slug("-a-") == "-a-"


def test_a_sweep_over_three_settings_keeps_every_value_in_the_name() -> None:
    variant = "style_weight=15,content_weight=10,tv_weight=0.9"
    name = render_name("{content}--{style}--{variant}", "neuschwanstein", "cafe_terrace", variant)
    assert name == "neuschwanstein--cafe_terrace--style_weight=15_content_weight=10_tv_weight=0.9"
    # Still bounded: a label is cut at 60 (a sweep's at 120), a name part at 150 characters.
    long = render_name("{content}--{style}--{variant}", "c" * 99, "s" * 99, "v" * 199)
    assert long == "c" * 60 + "--" + "s" * 60 + "--" + "v" * 26


def test_an_output_name_never_starts_with_a_dash() -> None:
    # `ls *.png` read "--help--starry-….png" as an option; a leading "." would hide it.
    assert render_name("{content}--{style}", "--help", "starry", "") == "help--starry"
    assert render_name("{style}/{content}", "-.cat", "-rf", "") == "rf/cat"
    assert render_name("{content}--{style}", "a-b", "starry", "") == "a-b--starry"  # inside a name, kept


def test_a_boolean_sweep_is_named_as_the_manifest_spells_it(gallery: Path) -> None:
    # Python's True/False in a file name, for a value the user wrote as true/false.
    jobs = load(gallery, PAIR + "    sweep: {preserve_color: [true, false]}\n").jobs
    assert sorted(job.variant for job in jobs) == ["preserve_color=false", "preserve_color=true"]
    assert all("preserve_color=true-" in job.output_name or "preserve_color=false-" in job.output_name
               for job in jobs), [job.output_name for job in jobs]


def test_a_sweep_over_powers_of_ten_reads_alike_and_has_no_plus_in_its_names(gallery: Path) -> None:
    # `g` gave 10000, 100000, 1e+06: one strip in two notations, and a "+" in a file name.
    jobs = load(gallery, PAIR + "    sweep: {style_weight: [1e4, 1e5, 1e6], tv_weight: [1.0e-5]}\n").jobs
    assert sorted(job.variant for job in jobs) == [
        "style_weight=1e4,tv_weight=1e-5", "style_weight=1e5,tv_weight=1e-5", "style_weight=1e6,tv_weight=1e-5"]
    assert not any("+" in job.output_name for job in jobs)


@pytest.mark.parametrize(("value", "text"), [
    (1000.0, "1000"), (25000.0, "25000"), (0.001, "0.001"), (0.5, "0.5"), (5.0, "5"), (0.0, "0"),
    (10000.0, "1e4"), (-1e4, "-1e4"), (1.5e6, "1.5e6"), (1e-4, "1e-4"), (2.5e-4, "0.00025"), (123456.0, "123456"),
])
def test_numbers_are_plain_unless_the_power_of_ten_is_much_shorter(value: float, text: str) -> None:
    assert format_value(value) == text
