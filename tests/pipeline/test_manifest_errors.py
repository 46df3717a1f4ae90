"""Bad manifests: each problem is reported with its file and line, all at once, as one
ManifestError, on real (tiny) image files in tmp_path; also unreadable manifest files and
finding a manifest by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import PAIR, load, make_gallery, write

from pipeline.errors import ManifestError, PipelineError, Problem
from pipeline.manifest import load_manifest, resolve_manifest_path


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """images/content/{a,b}.jpg, images/style/{s1,s2,s3}.jpg, and a folder with no images."""
    return make_gallery(tmp_path)


BAD = [
    ("yaml_syntax", "jobs:\n  - content: a.jpg\n    style: b: c\n", "bad.yaml:3: invalid YAML:", "mapping values are not allowed here (a value containing ': ' needs quotes)"),
    ("yaml_tab", "jobs:\n\t- content: a.jpg\n", "bad.yaml:2: invalid YAML:", "(YAML indents with spaces, not tabs)"),
    ("yaml_braces", "jobs:\n  - content: {{ photo }}\n", "bad.yaml:2: invalid YAML:", "found unhashable key (a value starting with { or [ is read as a mapping or list; quote it)"),
    ("yaml_indent", "jobs:\n  - content: a.jpg\n    style: b.jpg\n   settings: {}\n", "bad.yaml:4: invalid YAML:", "(this line's indentation does not match the lines above it)"),
    ("top_level_list", "- jobs\n- more\n", "bad.yaml:1: the top level is a list", "expected a mapping"),
    ("empty_file", "", "bad.yaml: the top level is empty", "'jobs'"),
    ("wrong_type", "settings:\n  size: big\n" + PAIR, "bad.yaml:2: settings.size:", "must be a whole number, got 'big'"),
    ("unknown_top_key", "ouptut: x\n" + PAIR, "bad.yaml:1: unknown key 'ouptut'", "(did you mean 'output'?)"),
    ("unknown_setting", "settings:\n  style_wieght: 3\n" + PAIR, "bad.yaml:2: settings: unknown setting 'style_wieght'", "(did you mean 'style_weight'?)"),
    ("unknown_entry_key", PAIR + "    colour: red\n", "bad.yaml:4: jobs[0]: unknown key 'colour'", "expected one of content"),
    ("missing_file", PAIR.replace("s1.jpg", "nope.jpg"), "bad.yaml:3: jobs[0].style:", "no such file 'images/style/nope.jpg'"),
    ("empty_glob", "jobs:\n  - contents: ['images/content/*.png']\n    style: images/style/s1.jpg\n", "bad.yaml:2: jobs[0].contents[0]:", "glob 'images/content/*.png' matched no files"),
    ("folder_of_folders", "jobs:\n  - contents: images/\n    style: images/style/s1.jpg\n", "bad.yaml:2: jobs[0].contents:", "holds no images (.jpg, .jpeg, .png, .webp, .bmp, .tif, .tiff, .gif); its subfolders have some, but a folder is not searched below itself: use 'images/**/*'"),
    ("empty_folder", "jobs:\n  - contents: images/empty\n    style: images/style/s1.jpg\n", "bad.yaml:2: jobs[0].contents:", "folder 'images/empty' holds no images"),
    ("weights_not_torch", "settings: {weights: images/empty/notes.txt}\n" + PAIR, "bad.yaml:1: settings.weights:", "'images/empty/notes.txt' is not a PyTorch weights file (expected a .pth saved by torch.save)"),
    ("not_an_image", "jobs:\n  - content: images/empty/notes.txt\n    style: images/style/s1.jpg\n", "bad.yaml:2: jobs[0].content:", "is not an image"),
    ("negative_number", PAIR + "    settings: {iterations: -5}\n", "bad.yaml:4: jobs[0].settings.iterations:", "got -5"),
    ("absurd_number", "settings: {size: 100000}\n" + PAIR, "bad.yaml:1: settings.size:", "between 32 and 8192 px, got 100000"),
    ("same_render_renamed", PAIR + PAIR.replace("jobs:\n", "") + "    name: cat\n", "bad.yaml:4: jobs[1]: renders the same image as jobs[0] (a, s1, same settings) under another name", "('cat', not 'a--s1'); give it once"),
    ("name_escapes", PAIR + "    name: ../../evil\n", "bad.yaml:4: jobs[0].name:", "must stay inside the output folder"),
    ("name_absolute", PAIR + "    name: /etc/{content}\n", "bad.yaml:4: jobs[0].name:", "must stay inside the output folder"),
    ("name_in_thumbs", PAIR + "    name: Thumbs/{content}\n", "bad.yaml:4: jobs[0].name:", "puts renders in 'thumbs/', where the contact sheet keeps its thumbnails"),
    ("name_unknown_field", PAIR + "    name: '{colour}'\n", "bad.yaml:4: jobs[0].name:", "unknown field '{colour}'"),
    ("blend_of_one", "jobs:\n  - content: images/content/a.jpg\n    styles:\n      - blend: [images/style/s1.jpg]\n", "bad.yaml:4: jobs[0].styles[0].blend:", "at least 2 different styles, got 1"),
    ("blends_named_apart", "jobs:\n  - content: images/content/a.jpg\n    styles:\n"
     "      - {blend: [images/style/s1.jpg, images/style/s2.jpg], name: one}\n"
     "      - {blend: [images/style/s1.jpg, images/style/s2.jpg], name: two}\n",
     "bad.yaml:2: jobs[0]: its blends 'one' and 'two' mix the same styles with the same weights: ",
     "one image under two names ('a--one' and 'a--two'); give the blend once"),
    ("blend_weights", "jobs:\n  - content: images/content/a.jpg\n    styles:\n      - blend: [images/style/s1.jpg, images/style/s2.jpg]\n        weights: [1, 2, 3]\n", "bad.yaml:5: jobs[0].styles[0].weights:", "has 3 weights for 2 styles: give one weight per style"),
    ("blend_setting_on_one_style", "settings: {style_blend: [1, 2]}\n" + PAIR, "bad.yaml:1: settings.style_blend:", "has 2 weights for 1 style: give one weight per style"),
    ("unknown_preset", "preset: fast\n" + PAIR, "bad.yaml:1: preset: unknown preset 'fast'", "preview"),
    ("jobs_empty", "jobs: []\n", "bad.yaml:1: jobs:", "must list at least one job"),
    ("jobs_missing", "settings: {size: 64}\n", "bad.yaml:1: missing required key 'jobs'", "jobs"),
    ("entry_not_a_mapping", "jobs:\n  - images/content/a.jpg\n", "bad.yaml:2: jobs[0]:", "expected a mapping, got 'images/content/a.jpg'"),
    ("content_and_contents", PAIR + "    contents: [images/content/b.jpg]\n", "bad.yaml:2: jobs[0]:", "has both 'content' and 'contents'"),
    ("no_style", "jobs:\n  - content: images/content/a.jpg\n", "bad.yaml:2: jobs[0]:", "needs 'style' (one image) or 'styles'"),
    ("empty_styles", "jobs:\n  - content: images/content/a.jpg\n    styles: []\n", "bad.yaml:3: jobs[0].styles:", "must not be empty"),
    ("sweep_not_a_list", "sweep:\n  style_weight: 1000\n" + PAIR, "bad.yaml:2: sweep.style_weight:", "expected a non-empty list of values to sweep, got 1000"),
    ("sweep_empty_list", PAIR + "    sweep: {tv_weight: []}\n", "bad.yaml:4: jobs[0].sweep.tv_weight:", "non-empty list of values to sweep, got an empty list"),
    ("missing_folder", "jobs:\n  - contents: nodir/\n    style: images/style/s1.jpg\n", "bad.yaml:2: jobs[0].contents:", "no such folder 'nodir/'"),
    ("sweep_bad_value", "sweep:\n  iterations:\n    - 10\n    - lots\n" + PAIR, "bad.yaml:4: sweep.iterations[1]:", "must be a whole number, got 'lots'"),
    ("devices_type", "run:\n  devices: 5\n" + PAIR, "bad.yaml:2: run.devices:", "expected devices like 'cpu'"),
    ("devices_name", "run:\n  devices: gpu0,cpu\n" + PAIR, "bad.yaml:2: run.devices:", "unknown device 'gpu0'"),
    ("devices_too_many", "run:\n  devices: 'cpu*100000000'\n" + PAIR, "bad.yaml:2: run.devices:", "cpu*100000000: at most 1024 workers per device"),
    ("job_timeout_zero", "run:\n  job_timeout: 0\n" + PAIR, "bad.yaml:2: run.job_timeout:", "must be greater than 0, got 0"),
    ("exponent_quoted", "settings: {style_weight: '1e4'}\n" + PAIR, "bad.yaml:1: settings.style_weight:", "must be a finite number, got '1e4'"),
    # YAML 1.1 read `1:30` as the base-60 number 90: 90 s where 90 min may have been meant.
    ("job_timeout_base_60", "run:\n  job_timeout: 1:30\n" + PAIR, "bad.yaml:2: run.job_timeout:", "expected a number of seconds, got '1:30' (write 90 for 1 min 30 s, 5400 for 1 h 30 min)"),
    ("job_timeout_h_m_s", "run: {job_timeout: '2:00:30'}\n" + PAIR, "bad.yaml:1: run.job_timeout:", "got '2:00:30' (write 7230)"),
    ("base_60_setting", "settings: {iterations: 1:40}\n" + PAIR, "bad.yaml:1: settings.iterations:", "must be a whole number, got '1:40'"),
    ("run_fraction_for_whole", "run: {checkpoint_every: 5.05e1}\n" + PAIR, "bad.yaml:1: run.checkpoint_every:", "expected a whole number, got 50.5"),
    ("devices_no_workers", "run:\n  devices: cpu*0\n" + PAIR, "bad.yaml:2: run.devices:", "cpu*0: expected at least 1 worker per device"),
    # Every job overrides these, so no job checked them: the value is still wrong where it is written.
    ("shadowed_top_setting", "settings: {size: 32px}\n" + PAIR + "    settings: {size: 64}\n", "bad.yaml:1: settings.size:", "must be a whole number, got '32px'"),
    ("shadowed_entry_setting", PAIR + "    settings: {iterations: -5}\n    sweep: {iterations: [10, 20]}\n", "bad.yaml:4: jobs[0].settings.iterations:", "must be between 1 and 100000, got -5"),
    ("shadowed_top_layer", "settings:\n  style_layers: {relu1_1: 1, relu9_9: 1}\n" + PAIR + "    settings: {style_layers: [relu2_1]}\n", "bad.yaml:2: settings.style_layers:", "relu9_9"),
    ("layer_typos", "settings: {style_layers: [rleu1_1, relu2_1, relu3_l, bogus]}\n" + PAIR, "bad.yaml:1: settings.style_layers:", "unknown layer 'rleu1_1' (did you mean 'relu1_1'?); unknown layer 'relu3_l' (expected e.g. relu1_1 … relu5_4, conv4_2, pool3); unknown layer 'bogus'"),
    # The two values most often left unquoted, with the line as it should read.
    ("template_unquoted", PAIR + "    name: {style}/{content}\n", "bad.yaml:4: invalid YAML:", "(a name template must be quoted: '{style}/{content}')"),
    ("template_a_mapping", PAIR + "    name: {style}\n", "bad.yaml:4: jobs[0].name:", "expected text, got a mapping (YAML reads an unquoted {style} as one): quote the template, as in '{style}'"),
    ("glob_unquoted", "jobs:\n  - contents: [*.jpg, b/*.png]\n    style: images/style/s1.jpg\n", "bad.yaml:2: invalid YAML:", "(* starts a YAML alias; quote a glob: ['*.jpg', 'b/*.png'])"),
    ("glob_unquoted_alone", "jobs:\n  - contents:\n      - *.jpg\n    style: images/style/s1.jpg\n", "bad.yaml:3: invalid YAML:", "(* starts a YAML alias; quote a glob: '*.jpg')"),
    ("jobs_misspelt", "job:\n  - content: images/content/a.jpg\n    style: images/style/s1.jpg\n", "bad.yaml:1: unknown key 'job'", "(did you mean 'jobs'?)"),
    ("job_timeout_text", "run:\n  job_timeout: '3600'\n" + PAIR, "bad.yaml:2: run.job_timeout:", "expected a number, got '3600'"),
    ("cluster_no_port", "run:\n  cluster: head\n" + PAIR, "bad.yaml:2: run.cluster:", "expected an address like 'tcp://host:8786', got 'head'"),
    ("cluster_protocol", "run:\n  cluster: bogus://x:1\n" + PAIR, "bad.yaml:2: run.cluster:", "unknown protocol 'bogus'"),
    ("cluster_port", "run:\n  cluster: tcp://head:port\n" + PAIR, "bad.yaml:2: run.cluster:", "the port must be a number"),
    ("output_number", "output: 2024\n" + PAIR, "bad.yaml:1: output:", "expected text, got the number 2024 (quote a name made of digits, as in '2024')"),
    ("cluster_type", "run:\n  cluster: 8786\n" + PAIR, "bad.yaml:2: run.cluster:", "expected text, got 8786"),
    ("batch_size_zero", "run: {batch_size: 0}\n" + PAIR, "bad.yaml:1: run.batch_size:", "must be at least 1, got 0"),
    ("init_missing", "settings:\n  init: art/nope.jpg\n" + PAIR, "bad.yaml:2: settings.init:", "no such file 'art/nope.jpg' (expected content or noise, or a file)"),
    ("init_keyword_case", "settings:\n  init: Noise\n" + PAIR, "bad.yaml:2: settings.init:", "no such file 'Noise' (did you mean 'noise'?)"),
    ("weights_keyword_case", "settings:\n  weights: Caffe\n" + PAIR, "bad.yaml:2: settings.weights:", "no such file 'Caffe' (did you mean 'caffe'?)"),
    ("init_not_an_image", "settings:\n  init: images/empty/notes.txt\n" + PAIR, "bad.yaml:2: settings.init:", "is not an image"),
    ("duplicate_key", "settings: {size: 64}\nsettings: {size: 128}\n" + PAIR, "bad.yaml:2: duplicate key 'settings'", "first on line 1"),
    ("sweep_repeats_a_value", PAIR + "    sweep: {style_weight: [1000, 5, 1000.0]}\n", "bad.yaml:4: jobs[0].sweep.style_weight[2]:", "1000.0 repeats style_weight[0] (1000); each value renders once, so give it once"),
    ("sweep_repeats_a_list", PAIR + "    sweep: {scales: [[64, 128], [64, 128.0]]}\n", "bad.yaml:4: jobs[0].sweep.scales[1]:", "repeats scales[0] ([64, 128])"),
    ("key_not_text", "1: x\n" + PAIR, "bad.yaml:1: keys must be text, got 1", "text"),
    # true/false must be YAML booleans: a quoted "no" is truthy text and would turn the option on.
    ("bool_as_text", "settings: {preserve_color: 'no'}\n" + PAIR, "bad.yaml:1: settings.preserve_color:", "expected true or false, got 'no'"),
    ("bool_swept_as_text", PAIR + "    sweep: {preserve_color: [true, 'false']}\n", "bad.yaml:4: jobs[0].sweep.preserve_color[1]:", "expected true or false, got 'false'"),
    ("bool_as_number", PAIR + "    settings:\n      upscale: 1\n", "bad.yaml:5: jobs[0].settings.upscale:", "expected true or false, got 1"),
    ("fraction_for_whole", "settings: {iterations: 2.55e1}\n" + PAIR, "bad.yaml:1: settings.iterations:", "must be a whole number, got 25.5"),
    ("number_as_bool", "settings: {size: true}\n" + PAIR, "bad.yaml:1: settings.size:", "must be a whole number, got true"),
    ("float_as_bool", "settings: {style_weight: yes}\n" + PAIR, "bad.yaml:1: settings.style_weight:", "must be a finite number, got true"),
    ("layer_weight_as_bool", "settings: {style_layers: {relu1_1: true}}\n" + PAIR, "bad.yaml:1: settings.style_layers:", "got {relu1_1: true}"),
    ("style_layers_all_zero", "settings: {style_layers: {relu1_1: 0, relu2_1: 0}}\n" + PAIR, "bad.yaml:1: settings.style_layers:", "so one must be above 0 (for no style, set style_weight: 0)"),
    ("scales_not_a_list", "settings: {scales: 256}\n" + PAIR, "bad.yaml:1: settings.scales:", "expected a list of sizes like [256, 512], got 256"),
    ("scales_too_small", "settings: {size: 64, scales: [16, 64]}\n" + PAIR, "bad.yaml:1: settings.scales:", "must be whole sizes of at least 32 px, got 16"),
    ("scales_past_size", "settings: {size: 64, scales: [32, 96]}\n" + PAIR, "bad.yaml:1: settings.scales:", "must not exceed size (64), got 96"),
    ("scales_descending", "settings: {size: 64, scales: [64, 32]}\n" + PAIR, "bad.yaml:1: settings.scales:", "expected increasing sizes like [256, 512], got [64, 32]"),
    ("huge_whole_number", "settings: {style_weight: 1%s}\n" % ("0" * 400) + PAIR, "bad.yaml:1: settings.style_weight:", "must be a finite number, got inf"),
    ("seed_too_big", "settings: {seed: 99999999999999999999999}\n" + PAIR, "bad.yaml:1: settings.seed:", "between -9223372036854775808 and 18446744073709551615, got 99999999999999999999999"),
    ("seed_too_small", PAIR + "    sweep: {seed: [1, -9223372036854775809]}\n", "bad.yaml:4: jobs[0].sweep.seed[1]:", "got -9223372036854775809"),
    ("settings_not_a_mapping", "settings: [size, 64]\n" + PAIR, "bad.yaml:1: settings:", "expected a mapping, got a list"),
]


@pytest.mark.parametrize(("text", "prefix", "phrase"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_manifest_is_reported_where_it_is(gallery: Path, text: str, prefix: str, phrase: str) -> None:
    path = write(gallery, text, "bad.yaml")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines[0]
    assert phrase in lines[0]
    assert isinstance(caught.value, PipelineError)
    assert [str(p) for p in caught.value.problems] == lines


def test_every_problem_is_listed_at_once(gallery: Path) -> None:
    text = """
        ouptut: x
        settings:
          size: big
          iterations: -5
        jobs:
          - content: images/content/nope.jpg
            style: images/style/s1.jpg
            colour: red
          - content: images/content/a.jpg
            styles: [{blend: [images/style/s1.jpg]}]
          - content: images/content/a.jpg
            styles: [{blend: [images/style/s1.jpg, images/style/s1.jpg]}]
        """
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value).splitlines() == [
        "m.yaml:1: unknown key 'ouptut' (did you mean 'output'?)",
        "m.yaml:3: settings.size: must be a whole number, got 'big'",
        "m.yaml:4: settings.iterations: must be between 1 and 100000, got -5",
        "m.yaml:6: jobs[0].content: no such file 'images/content/nope.jpg'",
        "m.yaml:8: jobs[0]: unknown key 'colour' (expected one of content, contents, style, styles, preset, settings, sweep, name)",
        "m.yaml:10: jobs[1].styles[0].blend: a blend needs at least 2 different styles, got 1",
        "m.yaml:12: jobs[2].styles[0].blend: a blend needs at least 2 different styles, got 1 "
        "(the same file named twice counts once)",
    ]
    assert caught.value.problems[1] == Problem("m.yaml", 3, "settings.size", "must be a whole number, got 'big'")


def test_structural_and_semantic_problems_are_listed_together(gallery: Path) -> None:
    # A bad item or key used to hide every later check of its entry: each of
    # these lines showed up only once the ones above it were fixed.
    text = """
        jobs:
          - content: 7
            style: null
          - content: images/content/a.jpg
            styles:
              - blend: images/style/
              - blend: [images/style/s1.jpg, images/style/s2.jpg]
                wieghts: [1, 2]
              - blend: [images/style/s1.jpg, images/style/s2.jpg]
                weights: [0.7]
              - blend: [images/style/s1.jpg]
              - blend: [images/style/s1.jpg, images/style/s3.jpg]
                weights: [-1, 2]
              - blend: [images/style/s2.jpg, images/style/s3.jpg]
                weights: [0, 0]
              - images/style/nope.jpg
          - contents: [images/content/a.jpg, 5, images/content/nope.jpg]
            style: images/style/s1.jpg
            settings: {size: 1}
        """
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value).splitlines() == [
        "m.yaml:2: jobs[0].content: expected text, got the number 7 (quote a name made of digits, as in '2024')",
        "m.yaml:3: jobs[0].style: expected an image file, folder, glob or blend, got nothing",
        "m.yaml:6: jobs[1].styles[0].blend: expected a list, got 'images/style/'",
        "m.yaml:8: jobs[1].styles[1]: unknown key 'wieghts' (did you mean 'weights'?)",
        "m.yaml:10: jobs[1].styles[2].weights: has 1 weight for 2 styles: give one weight per style",
        "m.yaml:11: jobs[1].styles[3].blend: a blend needs at least 2 different styles, got 1",
        "m.yaml:13: jobs[1].styles[4].weights: weights must be finite, non-negative and not all 0",
        "m.yaml:15: jobs[1].styles[5].weights: weights must be finite, non-negative and not all 0",
        "m.yaml:16: jobs[1].styles[6]: no such file 'images/style/nope.jpg'",
        "m.yaml:17: jobs[2].contents[1]: expected text, got the number 5 (quote a name made of digits, as in '2024')",
        "m.yaml:17: jobs[2].contents[2]: no such file 'images/content/nope.jpg'",
        "m.yaml:19: jobs[2].settings.size: must be between 32 and 8192 px, got 1",
    ]


def test_unreadable_manifests_are_errors_not_tracebacks(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such manifest"):
        load_manifest(tmp_path / "missing.yaml")
    with pytest.raises(ManifestError, match="is a folder"):
        load_manifest(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes(b"jobs: caf\xe9\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifest(tmp_path / "latin1.yaml")


def test_a_manifest_that_is_not_utf8_says_on_which_line(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"jobs:\n  - content: photos/a.jpg\n    style: art/caf\xe9.jpg\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "latin1.yaml")
    assert str(caught.value) == "latin1.yaml:3: is not UTF-8 text (invalid continuation byte at byte 50)"


def test_problem_without_a_line() -> None:
    assert str(Problem("g.yaml", None, "jobs[0]", "oops")) == "g.yaml: jobs[0]: oops"
    assert str(Problem("g.yaml", 7, "", "oops")) == "g.yaml:7: oops"


def test_resolve_manifest_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = tmp_path / "manifests"
    write(manifests, PAIR, "demo.yaml")
    write(manifests, PAIR, "gallery.yml")
    monkeypatch.chdir(tmp_path)
    assert resolve_manifest_path("demo", manifests) == manifests / "demo.yaml"
    assert resolve_manifest_path("demo.yaml", manifests) == manifests / "demo.yaml"
    assert resolve_manifest_path("gallery", manifests) == manifests / "gallery.yml"
    assert resolve_manifest_path("manifests/demo.yaml", manifests) == Path("manifests/demo.yaml")
    with pytest.raises(ManifestError) as caught:
        resolve_manifest_path("nope", manifests)
    assert str(caught.value) == f"nope: no such manifest 'nope' (looked for nope.yaml here and in {manifests})"
    with pytest.raises(ManifestError, match=r"^nope.yaml: no such manifest 'a/nope.yaml'$"):
        resolve_manifest_path("a/nope.yaml", manifests)
    # A bare name is looked for in the folder you are in first: your own gallery.yaml.
    write(tmp_path, PAIR, "gallery.yaml")
    assert resolve_manifest_path("gallery", manifests) == Path("gallery.yaml")


def test_a_bad_size_does_not_make_the_scales_answer_to_a_default_nobody_wrote(gallery: Path) -> None:
    # size 20000 is refused; the scales are then judged by fixed bounds, not by size 512.
    text = "settings: {size: 64}\n" + PAIR + "    settings: {scales: [16, 600], size: 20000}\n"
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    lines = str(caught.value).splitlines()
    assert any("jobs[0].settings.size: must be between 32 and 8192 px, got 20000" in line for line in lines), lines
    assert any("jobs[0].settings.scales: must be whole sizes of at least 32 px, got 16" in line for line in lines), lines
    assert "512" not in str(caught.value)
    fine = "settings: {size: 64}\n" + PAIR + "    settings: {scales: [32, 600], size: 20000}\n"
    with pytest.raises(ManifestError) as caught:
        load(gallery, fine)
    assert "scales" not in str(caught.value) and "size" in str(caught.value)


def test_weights_saved_by_torch_in_either_format_pass_the_manifest(gallery: Path) -> None:
    import torch

    for name, zipped in (("new.pth", True), ("old.pth", False)):
        torch.save({"features.0.weight": torch.zeros(1)}, gallery / name, _use_new_zipfile_serialization=zipped)
        manifest = load(gallery, f"settings: {{weights: {name}}}\n" + PAIR)
        assert manifest.jobs[0].settings.weights == str((gallery / name).resolve())


def _nested_aliases(depth: int) -> str:
    """`x-a` holds nine strings, `x-b` nine aliases of `x-a`, and so on: 9**depth strings spelled out."""
    names = "abcdefghijklm"[:depth]
    levels = [f"x-a: &a [{', '.join(['lol'] * 9)}]"]
    for name, inner in zip(names[1:], names, strict=False):
        levels.append(f"x-{name}: &{name} [" + ", ".join([f"*{inner}"] * 9) + "]")
    return "\n".join(levels) + f"\nsettings: {{size: *{names[-1]}}}\n" + PAIR


def test_a_value_built_from_nested_aliases_is_quoted_short(gallery: Path) -> None:
    path = write(gallery, _nested_aliases(6), "bad.yaml")  # 531441 strings: 3.7 MB spelled out
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith("bad.yaml:7: settings.size: must be a whole number, got [[[[[['lol', 'lol'"), line
    assert line.endswith("...") and len(line) < 200, line


def test_aliases_that_spell_out_billions_of_values_are_refused_at_once(gallery: Path) -> None:
    path = write(gallery, _nested_aliases(10), "bad.yaml")  # 9**10 strings
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(caught.value) == ("bad.yaml: invalid YAML: aliases (*name) in it spell out more than 2,000,000 "
                                 "values; is an anchor repeated inside another, many times over?")


def test_a_bad_layer_in_a_block_mapping_is_reported_on_its_own_line(gallery: Path) -> None:
    text = PAIR + "    settings:\n      style_layers:\n        relu1_1: 1\n        relu9_9: 2\n        relu2_1: -1\n"
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value).splitlines() == [
        "m.yaml:7: jobs[0].settings.style_layers: unknown layer 'relu9_9' (expected e.g. relu1_1 … relu5_4, "
        "conv4_2, pool3); weight of 'relu2_1' must be a finite non-negative number"]
    text = "settings:\n  size: 64\n  scales:\n    - 32\n    - 96\n" + PAIR
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value) == "m.yaml:5: settings.scales: must not exceed size (64), got 96"


def test_a_sweep_that_makes_too_many_jobs_is_refused_before_they_are_made(gallery):
    # A typo in a sweep made ten million jobs: the plan ran for minutes and grew past 2 GB.
    values = ", ".join(str(n) for n in range(1, 101))
    text = (f"sweep:\n  style_weight: [{values}]\n  content_weight: [{values}]\n  iterations: [{values}]\n"
            "jobs:\n  - contents: images/content/\n    style: images/style/s1.jpg\n")
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value) == (
        "m.yaml:6: jobs[0]: makes 2,000,000 jobs (2 contents × 1 style × 1,000,000 sweep points); a manifest "
        "makes at most 200,000: sweep fewer values, or split it into several manifests")


def test_the_job_limit_counts_the_entries_above(gallery, monkeypatch):
    from pipeline import manifest_expand

    monkeypatch.setattr(manifest_expand, "MAX_JOBS", 5)
    text = ("jobs:\n  - contents: images/content/\n    styles: [images/style/s1.jpg, images/style/s2.jpg]\n"
            "  - contents: images/content/\n    style: images/style/s3.jpg\n")
    with pytest.raises(ManifestError) as caught:
        load(gallery, text)
    assert str(caught.value) == (
        "m.yaml:4: jobs[1]: makes 2 jobs (2 contents × 1 style), after 4 from the entries above it; a manifest "
        "makes at most 5: sweep fewer values, or split it into several manifests")
    monkeypatch.setattr(manifest_expand, "MAX_JOBS", 6)
    assert len(load(gallery, text).jobs) == 6
