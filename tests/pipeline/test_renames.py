"""An output whose name changed but whose render did not is moved, not rendered again."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import yaml
from cli_helpers import explain, nst, result_lines
from PIL import Image

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.outputs import JOB_ID_KEY, encode_png, write_bytes_atomic, write_json_atomic
from pipeline.renames import adopt_renamed, find_renamed, unclaimed_outputs

JOB_ID = "3fa2b1c9d0e1"


def _job(name: str) -> RenderJob:
    return RenderJob(job_id=JOB_ID, content="/in/chelsea.jpg", styles=("/in/starry_night.jpg",),
                     settings=RenderSettings(), output_name=f"{name}-{JOB_ID}.png",
                     content_label="chelsea", style_label="starry_night")


def _finish(out: Path, name: str, png_id: str = JOB_ID, sidecar: dict | None = None) -> Path:
    png = out / f"{name}-{JOB_ID}.png"
    write_bytes_atomic(png, encode_png(Image.new("RGB", (8, 8), (1, 2, 3)), {JOB_ID_KEY: png_id}))
    if sidecar is not False:
        write_json_atomic(png.with_suffix(".json"), sidecar or {"job_id": JOB_ID, "output": png.name})
    return png


def _gallery(folder: Path, images: Path, name: str) -> Path:
    manifest = folder / "gallery.yaml"
    manifest.write_text(yaml.safe_dump({
        "output": "out", "settings": {"size": 32, "iterations": 3},
        "jobs": [{"content": str(images / "content" / "chelsea.jpg"),
                  "style": str(images / "style" / "starry_night.jpg"), "name": name}],
    }))
    return manifest


def test_a_new_name_template_moves_the_images_instead_of_rendering_them(gallery_dir, tmp_path):
    manifest = _gallery(tmp_path, gallery_dir, "first-{content}")
    assert (first := nst("render", str(manifest), cwd=tmp_path)).returncode == 0, explain(first)
    out = tmp_path / "out"
    (old_png,) = out.glob("first-chelsea-*.png")
    job_id = old_png.stem.rsplit("-", 1)[1]

    manifest = _gallery(tmp_path, gallery_dir, "second/{style}-{content}")
    planned = nst("plan", str(manifest), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert "0 to render, 1 already done (1 under an older name: the render renames them)" in planned.stdout
    assert "│ rename │" in planned.stdout, explain(planned)
    assert old_png.exists()  # planning moves nothing

    moved = nst("render", str(manifest), cwd=tmp_path)
    assert moved.returncode == 0, explain(moved)
    new_name = f"second/starry_night-chelsea-{job_id}.png"
    assert f"renamed {old_png.name} -> {new_name}" in moved.stderr, explain(moved)
    assert "nothing to render" in moved.stderr
    assert not old_png.exists() and not old_png.with_suffix(".json").exists()
    sidecar = json.loads((out / new_name).with_suffix(".json").read_text())
    assert sidecar["output"] == new_name and sidecar["renamed_from"] == old_png.name
    last = result_lines(out)[-1]
    assert last["status"] == "done" and last["output"] == new_name and last["renamed_from"] == old_png.name
    sheet = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="second/starry_night-chelsea-' in sheet and old_png.name not in sheet
    assert "last re-render" not in sheet  # a move, not a render

    lines = len(result_lines(out))
    again = nst("render", str(manifest), cwd=tmp_path)
    assert again.returncode == 0 and "renamed" not in again.stderr, explain(again)
    assert len(result_lines(out)) == lines  # nothing new to say
    rebuilt = nst("report", str(out), cwd=tmp_path)
    assert rebuilt.returncode == 0, explain(rebuilt)
    sheet = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="second/starry_night-chelsea-' in sheet and "last re-render" not in sheet


def test_only_a_whole_output_of_the_same_job_is_taken(tmp_path):
    job = _job("new")
    _finish(tmp_path, "other-id-in-the-png", png_id="000000000000")
    _finish(tmp_path, "no-sidecar", sidecar=False)
    _finish(tmp_path, "sidecar-of-another-job", sidecar={"job_id": "000000000000"})
    (tmp_path / f"cut-short-{JOB_ID}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert find_renamed(tmp_path, [job]) == {}
    good = _finish(tmp_path, "sub/old")
    assert find_renamed(tmp_path, [job]) == {JOB_ID: good}
    # Its own name is not a rename; another job's id is not this job's.
    assert find_renamed(tmp_path, [dataclasses.replace(job, output_name=f"sub/old-{JOB_ID}.png")]) == {}
    assert find_renamed(tmp_path, [dataclasses.replace(job, job_id="111111111111")]) == {}


def test_a_move_that_fails_leaves_the_old_pair_whole_and_the_job_renders(tmp_path, monkeypatch, caplog):
    old = _finish(tmp_path, "old")
    job = _job("new")

    def disk_refuses(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_refuses)
    with caplog.at_level(logging.WARNING, logger="nst"):
        assert adopt_renamed(tmp_path, [job]) == {}
    assert f"could not rename {old.name} to {job.output_name} (No space left on device)" in caplog.text
    assert find_renamed(tmp_path, [job]) == {JOB_ID: old}  # still whole, still found next time
    monkeypatch.undo()
    assert adopt_renamed(tmp_path, [job]) == {JOB_ID: old.name}
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"new-{JOB_ID}.json", f"new-{JOB_ID}.png"]


def test_a_move_removes_the_folders_it_emptied_and_no_other(tmp_path):
    # `name: "{style}/{content}"` changed to `"by-{content}/{style}"`: the old
    # per-style folders must not stay behind empty.
    _finish(tmp_path, "starry_night/deeper/old")
    assert adopt_renamed(tmp_path, [_job("by-chelsea/new")]) == {JOB_ID: f"starry_night/deeper/old-{JOB_ID}.png"}
    assert not (tmp_path / "starry_night").exists()
    assert (tmp_path / "by-chelsea" / f"new-{JOB_ID}.png").exists()
    # A folder that still holds something stays, and so does an empty one it held before.
    out = tmp_path / "second"
    (out / "keep" / "empty-before").mkdir(parents=True)
    (out / "keep" / "notes.txt").write_text("mine")
    old = _finish(out, "keep/deep/old")
    assert adopt_renamed(out, [_job("new")]) == {JOB_ID: "keep/deep/" + old.name}
    assert not (out / "keep" / "deep").exists()
    assert (out / "keep" / "notes.txt").exists() and (out / "keep" / "empty-before").is_dir()
    assert (out / f"new-{JOB_ID}.png").exists()


def test_a_moved_sidecar_names_the_inputs_as_the_manifest_names_them_now(tmp_path):
    # Rendered when the files had other names; the bytes, and so the id, are the same.
    made = {"device_name": "AMD EPYC", "stats": {"seconds": 6.2}, "versions": {"torch": "2.13.0"}}
    _finish(tmp_path, "old", sidecar={
        "job_id": JOB_ID, "output": f"old-{JOB_ID}.png", "manifest": "/old/gallery.yaml", "source": "jobs[3]",
        "content": "/old/cat.jpg", "styles": ["/old/starry.jpg"],
        "settings": RenderSettings(init="/old/start.jpg").to_dict(), **made})
    job = dataclasses.replace(_job("new"), settings=RenderSettings(init="/in/start.jpg"), source="jobs[0]")
    assert adopt_renamed(tmp_path, [job], manifest="/in/gallery.yaml") == {JOB_ID: f"old-{JOB_ID}.png"}
    sidecar = json.loads((tmp_path / f"new-{JOB_ID}.json").read_text())
    assert (sidecar["content"], sidecar["styles"], sidecar["settings"]["init"]) == (
        "/in/chelsea.jpg", ["/in/starry_night.jpg"], "/in/start.jpg")
    assert (sidecar["output"], sidecar["renamed_from"]) == (f"new-{JOB_ID}.png", f"old-{JOB_ID}.png")
    assert (sidecar["manifest"], sidecar["source"]) == ("/in/gallery.yaml", "jobs[0]")
    assert {key: sidecar[key] for key in made} == made  # how it was made stays as the render wrote it


def test_renamed_input_files_move_the_output_and_its_sidecar_names_them(gallery_dir, tmp_path):
    # Same pixels under new names: the same job, so the image is moved, not rendered again.
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, source in (("chelsea.jpg", "content/chelsea.jpg"), ("starry.jpg", "style/starry_night.jpg"),
                         ("start.jpg", "content/neuschwanstein.jpg")):
        shutil.copyfile(gallery_dir / source, photos / name)

    def render(content: str, style: str, init: str):
        manifest = tmp_path / "gallery.yaml"
        manifest.write_text(yaml.safe_dump({
            "output": "out", "settings": {"size": 32, "iterations": 2, "init": f"photos/{init}"},
            "jobs": [{"content": f"photos/{content}", "style": f"photos/{style}"}]}))
        result = nst("render", str(manifest), cwd=tmp_path)
        assert result.returncode == 0, explain(result)
        return result

    render("chelsea.jpg", "starry.jpg", "start.jpg")
    for old, new in (("chelsea.jpg", "kitty.jpg"), ("starry.jpg", "night.jpg"), ("start.jpg", "castle.jpg")):
        (photos / old).rename(photos / new)
    moved = render("kitty.jpg", "night.jpg", "castle.jpg")
    assert "renamed chelsea--starry-" in moved.stderr and "nothing to render" in moved.stderr, explain(moved)
    (sidecar_path,) = (tmp_path / "out").glob("kitty--night-*.json")
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["content"] == str(photos / "kitty.jpg") and sidecar["styles"] == [str(photos / "night.jpg")]
    assert sidecar["settings"]["init"] == str(photos / "castle.jpg")
    assert sidecar["output"] == sidecar_path.with_suffix(".png").name


def test_another_gallery_inside_the_output_folder_keeps_its_images(tmp_path):
    # `output: gal/a` in one manifest and `output: gal` in another: gal/a is a
    # gallery of its own, and its images are not gal's to move or count.
    job = _job("new")
    theirs = _finish(tmp_path / "a", "old")
    (tmp_path / "a" / "results.jsonl").write_text("")
    assert find_renamed(tmp_path, [job]) == {}
    assert unclaimed_outputs(tmp_path, []) == []
    assert adopt_renamed(tmp_path, [job]) == {} and theirs.exists()
    # A plain subfolder (a `name:` template's) is still this gallery's own.
    mine = _finish(tmp_path / "b", "old")
    assert find_renamed(tmp_path, [job]) == {JOB_ID: mine}
    assert unclaimed_outputs(tmp_path, []) == [mine]


def test_a_gallery_whose_output_holds_another_leaves_that_one_whole(gallery_dir, tmp_path):
    def manifest(name: str, output: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "output": output, "settings": {"size": 32, "iterations": 2},
            "jobs": [{"content": str(gallery_dir / "content" / "chelsea.jpg"),
                      "style": str(gallery_dir / "style" / "starry_night.jpg")}]}))
        return path

    inner = nst("render", manifest("a", "gal/a"), cwd=tmp_path)
    assert inner.returncode == 0, explain(inner)
    (png,) = (tmp_path / "gal" / "a").glob("*.png")
    plan = nst("plan", manifest("b", "gal"), cwd=tmp_path)
    assert "1 to render" in plan.stdout and "rename" not in plan.stdout, explain(plan)
    assert "belong to no job" not in plan.stdout + plan.stderr, explain(plan)
    outer = nst("render", tmp_path / "b.yaml", cwd=tmp_path)
    assert outer.returncode == 0 and "renamed" not in outer.stderr, explain(outer)
    assert png.exists() and png.with_suffix(".json").exists()
    assert (tmp_path / "gal" / png.name).exists()  # the outer gallery rendered its own
    again = nst("plan", tmp_path / "a.yaml", cwd=tmp_path)
    assert "0 to render, 1 already done" in again.stdout, explain(again)
