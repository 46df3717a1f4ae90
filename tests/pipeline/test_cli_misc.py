"""The other `nst` commands and the error paths, as real subprocesses:
--dry-run, plan, report, cache, devices, manifest and usage errors, bare
manifest names, and the `make render` entry point."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from cli_helpers import (
    REPO,
    SAMPLES,
    TINY,
    explain,
    nst,
    nst_env,
    pngs,
    read_sheet,
    render,
    result_lines,
    write_manifest,
)
from PIL import Image


@pytest.mark.slow
def test_dry_run_plan_report_and_cache(gallery_dir, tmp_path, isolated_cache):
    content, style = gallery_dir / "content", [gallery_dir / "style" / "night_cafe.jpg"]
    manifest = write_manifest(tmp_path / "m.yaml", [content / "chelsea.jpg"], style)
    out = tmp_path / "out"

    dry = render(manifest, "--dry-run")
    assert dry.returncode == 0, explain(dry)
    assert re.search(r"\btodo\b.*\bchelsea\b.*\bnight_cafe\b", dry.stdout), explain(dry)
    assert "1 to render, 0 already done" in dry.stdout
    assert not pngs(out) and not (out / "results.jsonl").exists()

    rendered = render(manifest)
    assert rendered.returncode == 0, explain(rendered)
    (job,) = result_lines(out)

    # A second content: the plan shows one job done, one to do, and what it costs.
    write_manifest(manifest, [content / "chelsea.jpg", content / "machu_picchu.jpg"], style)
    planned = nst("plan", manifest, cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert re.search(r"\bdone\b.*\bchelsea\b.*" + job["job_id"], planned.stdout), explain(planned)
    assert re.search(r"\btodo\b.*\bmachu_picchu\b", planned.stdout), explain(planned)
    assert "1 to render, 1 already done" in planned.stdout
    assert "style targets cached for 1 of 1 styles" in planned.stdout
    assert re.search(r"estimated \d+(\.\d)? (s|min|h)\b", planned.stdout), explain(planned)
    assert not (out / "machu_picchu").exists() and len(pngs(out)) == 1

    # The sheet can always be rebuilt from what is on disk: laid out by the
    # manifest the last run recorded, as that run's sheet was (the new photo pending).
    (out / "index.html").unlink()
    report = nst("report", out, cwd=tmp_path)
    assert report.returncode == 0, explain(report)
    assert report.stdout.startswith(f"wrote {out / 'index.html'} (laid out from m.yaml, the last run's manifest")
    assert sorted(c["status"] for c in read_sheet(out).cards) == ["done", "pending"]
    # Without that manifest, from results.jsonl alone: what was rendered here.
    moved = manifest.rename(tmp_path / "elsewhere.yaml")
    report = nst("report", out, cwd=tmp_path)
    assert report.returncode == 0, explain(report)
    assert "laid out from results.jsonl, every job rendered here: the last run's manifest" in report.stdout
    assert [(c["job_id"], c["status"]) for c in read_sheet(out).cards] == [(job["job_id"], "done")]
    assert "<title>m</title>" in (out / "index.html").read_text(encoding="utf-8")  # the run's title, not "out"
    moved.rename(manifest)

    info = nst("cache", "info")
    assert info.returncode == 0, explain(info)
    assert str(isolated_cache) in info.stdout
    assert re.search(r"\b1 style target\b", info.stdout), explain(info)
    cleared = nst("cache", "clear")
    assert cleared.returncode == 0, explain(cleared)
    assert "removed 1 style target from" in cleared.stdout
    assert re.search(r"\b0 style targets\b", nst("cache", "info").stdout)
    assert "warning" not in info.stderr + cleared.stderr


def test_a_cache_folder_that_cannot_be_written_is_warned_of_where_it_costs(tmp_path):
    # A cron environment with NST_CACHE_DIR under a file: every style computed every night.
    (tmp_path / "a_file").write_text("x")
    unusable = str(tmp_path / "a_file" / "nst")
    expected = (f"warning: the style-target cache {unusable} cannot be written (Not a directory): every render "
                "computes its styles' targets afresh; set NST_CACHE_DIR to a folder this user can write")
    info = nst("cache", "info", NST_CACHE_DIR=unusable)
    assert info.returncode == 0 and info.stderr == f"nst: {expected}\n", explain(info)
    manifest = write_manifest(tmp_path / "m.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                              [SAMPLES / "style" / "night_cafe.jpg"])
    rendered = nst("render", manifest, "--devices", "cpu", cwd=tmp_path, NST_CACHE_DIR=unusable)
    assert rendered.returncode == 0, explain(rendered)  # slower, not stopped
    assert f"WARNING {expected[len('warning: '):]}" in rendered.stderr, explain(rendered)


def test_report_on_a_missing_folder_is_a_usage_error(tmp_path):
    result = nst("report", tmp_path / "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"nst: {tmp_path / 'nowhere'}: no such output folder"
    (tmp_path / "gallery.yaml").write_text("jobs: []\n")  # the manifest, given for the folder
    result = nst("report", "gallery.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "nst: gallery.yaml: is a file, expected the output folder of a run"


def test_report_refuses_the_manifest_of_another_gallery(gallery_dir, tmp_path):
    # It would rewrite this folder's sheet as that gallery's, every cell pending.
    (tmp_path / "here").mkdir()
    write_manifest(tmp_path / "big.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                   [gallery_dir / "style" / "night_cafe.jpg"], output="there")
    result = nst("report", "here", "--manifest", "big.yaml", cwd=tmp_path)
    assert result.returncode == 2, explain(result)
    assert result.stderr == (f"nst: here: big.yaml renders into {tmp_path / 'there'}, not this folder; "
                             "expected the manifest of this gallery\n")
    assert not (tmp_path / "here" / "index.html").exists()


def test_devices_lists_the_cpu_here():
    result = nst("devices")
    assert result.returncode == 0, explain(result)
    assert re.search(r"^cpu\s", result.stdout, re.MULTILINE), explain(result)
    from nst_engine.cpu_model import cpu_model_name  # the name a sidecar gives the device

    assert f"{cpu_model_name()}, {os.cpu_count()} cores" in result.stdout, explain(result)


BAD_MANIFEST = """\
output: out
settings:
  size: 32
  iterations: -3
  style_wieght: 5
jobs:
  - contents: [photos/missing.jpg]
    styles: [{style}]
    colour: red
"""


def test_invalid_manifest_lists_every_problem_without_a_traceback(gallery_dir, tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(BAD_MANIFEST.format(style=gallery_dir / "style" / "night_cafe.jpg"))
    result = render(manifest)
    assert result.returncode == 2, explain(result)
    lines = result.stderr.splitlines()
    assert all(re.match(r"bad\.yaml:\d+: [^:]+: \S", line) for line in lines), explain(result)
    assert lines[0].startswith("bad.yaml:4: settings.iterations: ")
    assert "bad.yaml:5: settings: unknown setting 'style_wieght' (did you mean 'style_weight'?)" in lines
    assert "bad.yaml:7: jobs[0].contents[0]: no such file 'photos/missing.jpg'" in lines
    assert any(line.startswith("bad.yaml:9: jobs[0]: unknown key 'colour'") for line in lines)
    assert "Traceback" not in result.stderr and not result.stdout
    assert not (tmp_path / "out").exists()


def test_yaml_syntax_error_names_the_line(tmp_path):
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("output: out\njobs: [a, b\n")
    result = render(manifest)
    assert result.returncode == 2, explain(result)
    assert re.fullmatch(r"broken\.yaml:\d+: invalid YAML: .+\n", result.stderr), explain(result)
    assert not (tmp_path / "out").exists()


def test_missing_manifest_is_a_usage_error(tmp_path):
    result = render(tmp_path / "nope.yaml")
    assert result.returncode == 2, explain(result)
    assert "no such manifest" in result.stderr and "Traceback" not in result.stderr
    result = render(tmp_path)  # a folder given for the manifest
    assert result.returncode == 2, explain(result)
    assert result.stderr == f"{tmp_path}: is a folder, expected a manifest (.yaml file)\n"


def test_unknown_device_is_a_one_line_usage_error(gallery_dir, tmp_path):
    manifest = write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                              [gallery_dir / "style" / "night_cafe.jpg"])
    result = nst("render", manifest, "--devices", "gpu7", cwd=tmp_path)
    assert result.returncode == 2, explain(result)
    assert result.stderr.startswith("nst: --devices: unknown device 'gpu7'")
    assert len(result.stderr.strip().splitlines()) == 1, explain(result)
    assert not (tmp_path / "out").exists()
    result = nst("render", manifest, "--devices", "cpu*100000000", cwd=tmp_path)  # built 2.8 GB of names
    assert (result.returncode, result.stderr) == (
        2, "nst: --devices: cpu*100000000: at most 1024 workers per device\n"), explain(result)


@pytest.mark.parametrize("flags", [("--dry-run",), ()], ids=["dry-run", "render"])
def test_a_cuda_device_that_is_not_visible_is_refused_before_anything_happens(gallery_dir, tmp_path, flags):
    # Even a run with nothing to render refuses it: a typo in a cron line would
    # otherwise show only on the first night with work.
    manifest = write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                              [gallery_dir / "style" / "night_cafe.jpg"])
    result = nst("render", manifest, *flags, "--devices", "cuda:0", cwd=tmp_path, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 2, explain(result)
    assert result.stderr == "nst: --devices: cuda:0 is not visible (visible CUDA devices: none)\n"
    assert not (tmp_path / "out").exists()  # no banner, no sheet, no log
    # Asked for by the manifest, not the flag: the error points at the manifest's line.
    manifest.write_text(manifest.read_text() + "run:\n  devices: cpu,cuda:0\n")
    line = manifest.read_text().splitlines().index("  devices: cpu,cuda:0") + 1
    result = nst("render", manifest, *flags, cwd=tmp_path, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 2, explain(result)
    assert result.stderr == f"nst: m.yaml:{line}: run.devices: cuda:0 is not visible (visible CUDA devices: none)\n"
    assert not (tmp_path / "out").exists()


def test_plan_notes_a_cuda_device_that_is_not_visible_and_still_shows_the_plan(gallery_dir, tmp_path):
    # A plan may be read on a login node and rendered on a GPU node: a note, not an error.
    manifest = write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                              [gallery_dir / "style" / "night_cafe.jpg"])
    manifest.write_text(manifest.read_text() + "run:\n  devices: cuda:3\n")
    line = manifest.read_text().splitlines().index("  devices: cuda:3") + 1
    result = nst("plan", manifest, cwd=tmp_path, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, explain(result)
    assert result.stderr == (f"nst: note: m.yaml:{line}: run.devices: cuda:3 is not visible "
                             "(visible CUDA devices: none) (nst render would stop there)\n"), explain(result)
    assert "1 to render" in result.stdout, explain(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_bare_manifest_name_resolves_from_manifests_folder(tmp_path):
    for name in ("demo", "demo.yaml"):
        result = nst("plan", name, cwd=tmp_path)  # far from the repository
        assert result.returncode == 0, explain(result)
        assert f"demo.yaml -> {REPO / 'out' / 'demo'}" in result.stdout
        assert re.search(r"^(\d) to render, (\d) already done", result.stdout, re.MULTILINE), explain(result)
        assert "neuschwanstein" in result.stdout and "starry_night" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_render_renders_a_manifest(gallery_dir, tmp_path):
    folder = tmp_path / "my gallery été"  # a space must not split the path in two
    folder.mkdir()
    manifest = write_manifest(folder / "tiny.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                              [gallery_dir / "style" / "night_cafe.jpg"])
    if not (REPO / ".venv" / "bin" / "nst").exists():
        pytest.skip("no .venv/bin/nst: run `make setup` first")
    # `-o` keeps make from redoing the setup step (a pip install) when pyproject.toml
    # is newer than .venv/.installed: this test is about the render recipe.
    command = ["make", "-o", ".venv/.installed", "render", f"MANIFEST={manifest}", "ARGS=--devices cpu -q"]
    # A top-level make, as from cron: under `make test` these say "make[1]" and
    # turn on its "Entering directory" lines.
    env = {key: value for key, value in nst_env().items() if key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO,  # as `cd repo && make`
                            stdin=subprocess.DEVNULL, timeout=300, check=False)
    assert result.returncode == 0, explain(result)
    # Silent on success, as a cron line wants: make does not echo the command either.
    assert (result.stdout, result.stderr) == ("", ""), explain(result)
    assert [r["status"] for r in result_lines(folder / "out")] == ["done"]
    with Image.open(pngs(folder / "out")[0]) as image:
        assert max(image.size) == TINY["size"]


@pytest.mark.slow
def test_copied_photos_are_five_notes_and_a_count_in_the_plan_and_the_run_that_quiet_leaves_out(gallery_dir, tmp_path):
    # A note per copy was 340 lines for 340 copies, in every plan and every night's log.
    content, style = gallery_dir / "content", gallery_dir / "style" / "night_cafe.jpg"
    copies = [content / f"chelsea ({n}).jpg" for n in range(1, 8)]
    for copy in copies:
        shutil.copy(content / "chelsea.jpg", copy)
    manifest = write_manifest(tmp_path / "m.yaml", [content / "chelsea.jpg", *copies], [style])
    same_bytes = re.compile(r"note: .*chelsea \(\d\)\.jpg has the same bytes as .*chelsea\.jpg: "
                            r"its jobs render once, as chelsea")
    summary = "note: and 2 more files copy others; `nst plan --all` lists every one"
    planned = nst("plan", manifest, cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert "1 to render" in planned.stdout
    assert (len(same_bytes.findall(planned.stdout)), planned.stdout.count(summary)) == (5, 1), explain(planned)
    every = nst("plan", manifest, "--all", cwd=tmp_path)
    assert (len(same_bytes.findall(every.stdout)), summary in every.stdout) == (7, False), explain(every)
    rendered = render(manifest)
    assert rendered.returncode == 0, explain(rendered)
    logged = (tmp_path / "out" / "nst.log").read_text()
    for printed in (rendered.stderr, logged):
        assert len(re.findall(r"INFO m\.yaml: " + same_bytes.pattern, printed)) == 5, explain(rendered)
        assert f"INFO m.yaml: {summary}" in printed, explain(rendered)
    assert len(pngs(tmp_path / "out")) == 1
    # From cron, -q prints nothing when all is well: a known, handled copy is not news.
    quiet = render(manifest, "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", ""), explain(quiet)


def test_version_prints_the_installed_version_without_loading_torch():
    from importlib.metadata import version

    result = nst("--version")
    assert result.returncode == 0, explain(result)
    assert result.stdout == f"nst {version('nst-gallery')}\n", explain(result)
    probe = ("import sys\nfrom pipeline.cli import app\ntry:\n    app(['--version'])\n"
             "finally:\n    print('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr)")
    checked = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             env=nst_env(), cwd=REPO, timeout=60, check=False)
    assert checked.returncode == 0 and checked.stderr.strip() == "no torch", explain(checked)


def test_report_lays_out_by_the_recorded_manifest_only_while_it_still_fits(gallery_dir, tmp_path):
    import json

    from pipeline.outputs import SUMMARY_FILE
    from pipeline.rebuild import recorded_manifest

    out = tmp_path / "out"
    out.mkdir()
    assert recorded_manifest(out) == (None, "laid out from results.jsonl: no run recorded its manifest here")
    manifest = write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                              [gallery_dir / "style" / "night_cafe.jpg"])
    (out / SUMMARY_FILE).write_text(json.dumps({"manifest": str(manifest)}))
    loaded, note = recorded_manifest(out)
    assert loaded.path == manifest and note.startswith("laid out from m.yaml, the last run's manifest")
    manifest.write_text(manifest.read_text().replace("output: out", "output: other"))
    assert recorded_manifest(out)[0] is None and f"m.yaml now renders into {tmp_path / 'other'}" in recorded_manifest(out)[1]
    manifest.write_text("jobs: 3\n")  # a typo since: the user's to fix, not a reason to lay out all history
    (out / "index.html").write_text("the gallery's sheet")
    refused = nst("report", str(out), cwd=tmp_path)
    assert refused.returncode == 2, explain(refused)
    assert refused.stderr.startswith(f"nst: {out}: the last run's manifest no longer loads (m.yaml:1: jobs:"), \
        explain(refused)
    assert refused.stderr.rstrip().endswith("fix it, or pass --manifest; index.html is left as it was")
    assert len(refused.stderr.splitlines()) == 1 and (out / "index.html").read_text() == "the gallery's sheet"
    manifest.unlink()
    assert recorded_manifest(out)[1].endswith(f"the last run's manifest {manifest} is gone")
