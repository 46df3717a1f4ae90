"""Images whose labels collide (cat.jpg and cat.png are both "cat") are told
apart wherever they are shown: `nst plan` and the contact sheet; and `--only`
picks a job by any name these show it by."""

from __future__ import annotations

import shutil

import yaml
from cli_helpers import explain, nst, write_manifest
from PIL import Image

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.labels import cell_tags, data_size, distinct_names, select
from pipeline.manifest import load_manifest
from pipeline.reporter import write_contact_sheet


def test_distinct_names_keep_a_unique_label_and_lengthen_colliding_ones():
    names = distinct_names({"/p/cat.jpg": "cat", "/p/cat.png": "cat", "/p/dog.jpg": "dog",
                            "/a/x/bird.jpg": "bird", "/b/x/bird.jpg": "bird"})
    assert names == {"/p/cat.jpg": "cat.jpg", "/p/cat.png": "cat.png", "/p/dog.jpg": "dog",
                     "/a/x/bird.jpg": "a/x/bird.jpg", "/b/x/bird.jpg": "b/x/bird.jpg"}


def _gallery(gallery_dir):
    """cat.jpg and cat.png (different photos), and two paintings both named night.jpg."""
    content, style = gallery_dir / "content", gallery_dir / "style"
    shutil.copy(content / "chelsea.jpg", content / "cat.jpg")
    Image.open(content / "neuschwanstein.jpg").save(content / "cat.png")
    (gallery_dir / "more").mkdir()
    shutil.copy(style / "starry_night.jpg", style / "night.jpg")
    shutil.copy(style / "night_cafe.jpg", gallery_dir / "more" / "night.jpg")
    manifest = gallery_dir.parent / "cats.yaml"
    manifest.write_text(yaml.safe_dump({
        "output": "out", "settings": {"size": 32, "iterations": 2},
        "jobs": [{"contents": ["images/content/cat.*"],
                  "styles": ["images/style/night.jpg", "images/more/night.jpg"]}]}))
    return manifest


def test_the_plan_tells_same_named_images_apart(gallery_dir, tmp_path):
    planned = nst("plan", str(_gallery(gallery_dir)), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    rows = [[cell.strip() for cell in line.split("│")[3:5]] for line in planned.stdout.splitlines()
            if "│ todo" in line]
    assert sorted(rows) == [["cat.jpg", "more/night.jpg"], ["cat.jpg", "style/night.jpg"],
                            ["cat.png", "more/night.jpg"], ["cat.png", "style/night.jpg"]], explain(planned)


def test_the_sheet_tells_same_named_images_apart(gallery_dir, tmp_path):
    manifest = load_manifest(_gallery(gallery_dir))
    manifest.output_dir.mkdir()
    html = write_contact_sheet(manifest.output_dir, list(manifest.jobs), {}, title="cats").read_text()
    for name in ("cat.jpg", "cat.png", "style/night.jpg", "more/night.jpg"):
        assert f'title="{name}"' in html, name
    assert 'title="cat"' not in html and 'title="night"' not in html


def test_only_picks_an_image_by_the_file_name_the_plan_shows(gallery_dir, tmp_path):
    planned = nst("plan", str(_gallery(gallery_dir)), "--only", "cat.png", cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert planned.stdout.count("│ cat.png ") == 2 and "│ cat.jpg " not in planned.stdout, explain(planned)


def test_only_takes_each_name_the_tool_shows_a_job_by():
    settings = RenderSettings(size=32)
    strip = RenderJob("5f30c038a523", "/p/cat.jpg", ("/a/starry.jpg",), settings,
                      "strip/cat--w=5-5f30c038a523.png", "cat", "starry")
    other = RenderJob("0123456789ab", "/p/dog.jpg", ("/a/starry.jpg",), settings, "dog--starry-0123456789ab.png",
                      "dog", "starry")
    jobs = (strip, other)
    for shown in ("strip/cat--w=5-5f30c038a523.png",  # the output's path
                  "strip/cat--w=5-5f30c038a523",  # ... without its extension
                  "cat--w=5-5f30c038a523",  # as the log names it: "done cat--w=5-5f30c038a523 in 3.1 s"
                  "5f30c038a523",  # the plan's job id column
                  "cat", "cat.jpg", "*w=5*"):
        assert select(jobs, shown) == [strip], shown
    assert select(jobs, "starry") == [strip, other]
    assert select(jobs, "cat--w=5") == []  # a glob matches whole names


def test_only_takes_a_name_with_glob_characters_as_written_where_a_job_has_it():
    settings = RenderSettings(size=32)
    jobs = tuple(RenderJob(f"{index:012d}", f"/p/{name}.jpg", ("/a/starry.jpg",), settings,
                           f"{name}--starry-{index:012d}.png", name, "starry")
                 for index, name in enumerate(["photo [1]", "what?", "what1"]))
    assert select(jobs, "photo [1]") == [jobs[0]]  # as a glob, [1] matched only "photo 1"
    assert select(jobs, "what?") == [jobs[1]]  # not what1 too
    assert select(jobs, "what?.jpg") == [jobs[1]]
    assert select(jobs, "what*") == [jobs[1], jobs[2]]  # no job is named so: a glob


def test_only_picks_an_image_by_the_part_of_its_path_the_plan_shows():
    # Camera folders: day1/IMG_0001.jpg and day2/IMG_0001.jpg show by folder.
    settings = RenderSettings(size=32)
    jobs = tuple(RenderJob(f"{day}0123456789"[:12], f"/trip/{day}/IMG_0001.jpg", ("/a/starry.jpg",), settings,
                           f"IMG_0001--starry-{day}.png", "IMG_0001", "starry") for day in ("day1", "day2"))
    assert select(jobs, "day2/IMG_0001.jpg") == [jobs[1]]
    assert select(jobs, "*day2*") == [jobs[1]]
    assert select(jobs, "trip/day2/IMG_0001.jpg") == []  # more than the plan shows


def test_only_picks_a_sweep_point_by_the_settings_the_plan_and_sheet_show():
    jobs = tuple(RenderJob(f"{index:012d}", "/p/cat.jpg", ("/a/starry.jpg",), RenderSettings(size=size),
                           f"cat--starry--{index}.png", "cat", "starry",
                           variant=f"style_weight={weight},scales={size // 2},{size}")
                 for index, (weight, size) in enumerate([(5, 256), (50, 256), (5, 512)]))
    assert select(jobs, "style_weight=5") == [jobs[0], jobs[2]]  # one setting: not style_weight=50
    assert select(jobs, "scales=128,256") == [jobs[0], jobs[1]]  # a value with a comma of its own
    assert select(jobs, "style_weight=5,scales=256,512") == [jobs[2]]  # the whole point
    assert select(jobs, "style_weight=5*") == list(jobs)  # a glob as before


def test_only_picks_an_entry_by_the_tag_that_tells_it_from_the_others_in_its_cell():
    # Three entries of one pair: the plan's variant column (and the sheet's card
    # tags) read "size=48,init=content", "size=64,init=content", "size=64,init=night_cafe".
    jobs = tuple(RenderJob(f"{index:012d}", "/p/cat.jpg", ("/a/starry.jpg",), RenderSettings(size=size, init=init),
                           f"cat--starry-{index:012d}.png", "cat", "starry")
                 for index, (size, init) in enumerate([(48, "content"), (64, "content"), (64, "/a/night_cafe.jpg")]))
    assert [cell_tags(jobs)[job.job_id] for job in jobs] == [
        "size=48,init=content", "size=64,init=content", "size=64,init=night_cafe"]
    assert select(jobs, "size=48,init=content") == [jobs[0]]
    assert select(jobs, "init=night_cafe") == [jobs[2]]
    assert select(jobs, "size=64") == [jobs[1], jobs[2]]
    assert select(jobs[:1], "size=48") == []  # alone in its cell: no tag, nothing to match


def test_only_glob_that_matches_nothing_is_a_usage_error(gallery_dir, tmp_path):
    manifest = write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                              [gallery_dir / "style" / "night_cafe.jpg"])
    for command in ("render", "plan"):
        result = nst(command, manifest, "--only", "chelsae*", cwd=tmp_path)  # a typo
        assert result.returncode == 2, explain(result)
        assert result.stderr.startswith("nst: --only 'chelsae*' matches none of the 1 jobs")
        assert result.stderr.rstrip().endswith("; did you mean 'chelsea*'?)"), explain(result)
        assert "wildcard" not in result.stderr  # it has one already
    # A part of a name: glob rules need a wildcard, which the message offers.
    partial = nst("plan", manifest, "--only", "chelsea--night", cwd=tmp_path)
    assert partial.returncode == 2, explain(partial)
    assert partial.stderr.rstrip().endswith("for part of a name, use a wildcard: '*chelsea--night*')")
    assert nst("plan", manifest, "--only", "*chelsea--night*", cwd=tmp_path).returncode == 0
    # ... and only where the wildcard form would pick something.
    unknown = nst("plan", manifest, "--only", "chihuahua", cwd=tmp_path)
    assert unknown.returncode == 2 and "wildcard" not in unknown.stderr, explain(unknown)
    assert "did you mean" not in unknown.stderr
    # `--only "$JOB"` with JOB unset: not every job.
    empty = nst("render", manifest, "--force", "--only", "", cwd=tmp_path)
    assert empty.returncode == 2, explain(empty)
    assert empty.stderr == "nst: --only '' is empty: give a name or a glob, or leave --only out for every job\n"
    assert not (tmp_path / "out").exists()


def test_sizes_are_said_in_the_unit_that_shows_them():
    # A 20 KB checkpoint was "(0.0 MiB)".
    assert [data_size(n) for n in (0, 1, 1000, 20_480, 3 * 2**20 + 2**19, 5 * 2**30)] == [
        "0 bytes", "1 byte", "1000 bytes", "20 KiB", "3.5 MiB", "5.0 GiB"]
