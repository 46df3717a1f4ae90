"""`nst plan` on big sweeps: a readable table, quickly, with every job counted."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import yaml
from cli_helpers import explain, nst, render
from PIL import Image

from nst_engine import cpu_model, images
from nst_engine.settings import RenderSettings
from pipeline import plan_view
from pipeline.cache_admin import cached_style_count
from pipeline.jobs import checkpoint_path
from pipeline.manifest import load_manifest
from pipeline.outputs import JOB_ID_KEY, encode_png, write_bytes_atomic, write_json_atomic
from pipeline.run_options import RenderOptions, planned_device_types


def _sweep_manifest(gallery_dir, points: int):
    path = gallery_dir.parent / "sweep.yaml"
    entry = {"content": str(gallery_dir / "content" / "chelsea.jpg"),
             "style": str(gallery_dir / "style" / "starry_night.jpg"),
             "sweep": {"style_weight": list(range(1, points + 1))}}
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 32, "iterations": 3}, "jobs": [entry]}))
    return path


def _rows(printed: str) -> list[int]:
    return [int(n) for n in re.findall(r"^│ *(\d+) *│ todo", printed, flags=re.MULTILINE)]


def test_a_big_plan_lists_the_first_rows_and_counts_every_job(gallery_dir, tmp_path):
    manifest = _sweep_manifest(gallery_dir, plan_view.PLAN_ROWS + 5)
    short = nst("plan", str(manifest), cwd=tmp_path)
    assert short.returncode == 0, explain(short)
    assert _rows(short.stdout) == list(range(1, plan_view.PLAN_ROWS + 1)), explain(short)
    assert "... and 5 more jobs; `nst plan --all` lists every one" in short.stdout
    assert f"{plan_view.PLAN_ROWS + 5} to render, 0 already done" in short.stdout

    everything = nst("plan", str(manifest), "--all", cwd=tmp_path)
    assert everything.returncode == 0, explain(everything)
    assert _rows(everything.stdout) == list(range(1, plan_view.PLAN_ROWS + 6))
    assert "more jobs" not in everything.stdout


def test_a_plan_that_fits_has_no_more_line(gallery_dir, tmp_path):
    planned = nst("plan", str(_sweep_manifest(gallery_dir, 3)), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert _rows(planned.stdout) == [1, 2, 3] and "more jobs" not in planned.stdout


def test_the_cached_count_reads_each_painting_once_however_big_the_sweep(gallery_dir, monkeypatch, isolated_cache):
    decoded = []
    real_load = images.load_image
    monkeypatch.setattr(images, "load_image", lambda path: decoded.append(path) or real_load(path))
    paintings = [str(gallery_dir / "style" / name) for name in ("starry_night.jpg", "night_cafe.jpg")]
    sweep = [RenderSettings(size=64, iterations=5, style_weight=w, tv_weight=t / 10)
             for w in range(1, 51) for t in range(10)]  # 500 points, one size
    asked = [(painting, settings, 64) for painting in [*paintings, "/no/such.jpg"] for settings in sweep]
    assert cached_style_count(asked) == 0  # an empty cache
    assert sorted(decoded) == sorted([*paintings, "/no/such.jpg"])


def test_the_plan_shows_the_size_a_small_photo_really_renders_at(gallery_dir, tmp_path):
    path = tmp_path / "big.yaml"  # chelsea.jpg is 451 × 300; upscale is off by default
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 2048, "iterations": 2}, "jobs": [
        {"content": str(gallery_dir / "content" / "chelsea.jpg"),
         "style": str(gallery_dir / "style" / "starry_night.jpg")}]}))
    planned = nst("plan", str(path), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert re.search(r"│ 451 \(of 2048\) │ 2 +│ 451 +│", planned.stdout), explain(planned)
    assert "note: 1 job to render comes out smaller than the size asked for" in planned.stdout
    assert "repeats another job's image" not in planned.stdout


def test_a_size_sweep_above_the_photos_size_is_noted_as_repeated_renders(gallery_dir, tmp_path):
    # chelsea.jpg is 451 px: 500, 600 and 2048 all render it at 451, the same image
    # three times; neuschwanstein.jpg (768 px) renders each size but 2048 at its own.
    path = tmp_path / "sizes.yaml"
    sweep = {"contents": [str(gallery_dir / "content" / name) for name in ("chelsea.jpg", "neuschwanstein.jpg")],
             "style": str(gallery_dir / "style" / "starry_night.jpg"), "sweep": {"size": [300, 500, 600, 2048]}}
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"iterations": 2}, "jobs": [sweep]}))
    jobs = load_manifest(path).jobs
    chelsea = {job.settings.size: job for job in jobs if "chelsea" in job.content}
    sides = {job.content: 451 if "chelsea" in job.content else 768 for job in jobs}
    assert plan_view.same_renders(jobs, sides) == [(chelsea[600], chelsea[500]), (chelsea[2048], chelsea[500])]
    planned = nst("plan", str(path), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    first, repeat = (chelsea[size].output_name.removesuffix(".png") for size in (500, 600))
    assert (f"note: 2 jobs to render repeat another job's image: a size sweep above the photo's own size renders "
            f"it at that size each time, e.g. {first} and {repeat} both at 451 px") in planned.stdout, explain(planned)
    # Other settings, or upscale, make them different images.
    assert plan_view.same_renders([chelsea[500], replace(chelsea[600], settings=replace(
        chelsea[600].settings, style_weight=7))], sides) == []
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"iterations": 2, "upscale": True}, "jobs": [sweep]}))
    upscaled = nst("plan", str(path), cwd=tmp_path)
    assert upscaled.returncode == 0 and "repeat" not in upscaled.stdout, explain(upscaled)


def _tiny_photo_manifest(gallery_dir, tmp_path, **settings):
    """A 40 × 30 photo under `size: 64`: without upscale it renders at 40 px."""
    photo = tmp_path / "tiny.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(photo)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 64, "iterations": 1, **settings},
                                    "jobs": [{"content": str(photo),
                                              "style": str(gallery_dir / "style" / "starry_night.jpg")}]}))
    return path


def test_the_cached_count_looks_at_the_size_a_small_photo_renders_at(gallery_dir, tmp_path, isolated_cache):
    manifest = _tiny_photo_manifest(gallery_dir, tmp_path)
    assert render(manifest, "--devices", "cpu").returncode == 0
    finished = nst("plan", str(manifest), cwd=tmp_path)
    assert "0 to render, 1 already done; nothing to render\n" in finished.stdout, explain(finished)
    assert "cached for" not in finished.stdout and "estimated" not in finished.stdout  # not "0 of 0 styles"
    _tiny_photo_manifest(gallery_dir, tmp_path, content_weight=2)  # a new job, the same style targets
    planned = nst("plan", str(manifest), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    assert "1 to render, 0 already done; style targets cached for 1 of 1 styles" in planned.stdout, explain(planned)
    # An entry cut short (a full disk, an interrupted copy) is computed again: not counted as cached.
    (entry,) = isolated_cache.rglob("*.pt")
    entry.write_bytes(entry.read_bytes()[:1000])
    planned = nst("plan", str(manifest), cwd=tmp_path)
    assert "style targets cached for 0 of 1 styles" in planned.stdout, explain(planned)
    info = nst("cache", "info")
    assert "1 style target, 1000 bytes (1 not whole: computed again when next used)" in info.stdout, explain(info)


def test_the_cached_count_follows_the_precision_of_the_devices_that_will_render(
        gallery_dir, tmp_path, isolated_cache, monkeypatch):
    assert render(_tiny_photo_manifest(gallery_dir, tmp_path, precision="bf16"), "--devices", "cpu").returncode == 0
    style = str(gallery_dir / "style" / "starry_night.jpg")
    automatic = RenderSettings(size=64, iterations=1)
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: False)  # `auto` means fp32 on this CPU
    assert cached_style_count([(style, automatic, 40)], {"cpu"}) == 0
    assert cached_style_count([(style, automatic, 40)], {"cuda"}) == 1  # `auto` is bf16 on CUDA
    assert cached_style_count([(style, automatic, 40)], {"cpu", "cuda"}) == 1
    assert cached_style_count([(style, automatic, 64)], {"cuda"}) == 0  # another size


def test_the_plan_knows_where_its_workers_will_be_when_it_can(gallery_dir, tmp_path):
    path = _tiny_photo_manifest(gallery_dir, tmp_path)
    manifest = load_manifest(path)
    assert planned_device_types(manifest, RenderOptions(devices=("cpu", "cpu"))) == {"cpu"}
    assert planned_device_types(manifest, RenderOptions(devices=("cuda:0", "cpu"))) == {"cpu", "cuda"}
    assert planned_device_types(manifest, RenderOptions(devices=("cuda:1",))) == {"cuda"}
    assert planned_device_types(manifest, RenderOptions()) == {"cpu", "cuda"}  # detection decides
    assert planned_device_types(manifest, RenderOptions(cluster="tcp://x:8786")) == {"cpu", "cuda"}
    path.write_text(path.read_text() + "run:\n  devices: cuda:0,cuda:1\n")
    on_gpus = load_manifest(path)
    assert planned_device_types(on_gpus, RenderOptions()) == {"cuda"}
    assert planned_device_types(on_gpus, RenderOptions(devices=("cpu",))) == {"cpu"}  # a trial run at home


def test_a_plan_of_good_inputs_warns_of_nothing(gallery_dir, tmp_path):
    planned = nst("plan", str(_sweep_manifest(gallery_dir, 2)), cwd=tmp_path)
    assert planned.returncode == 0 and "warning" not in planned.stdout, explain(planned)


def test_many_bad_inputs_give_a_bounded_list_of_warnings(gallery_dir, tmp_path):
    bad = plan_view.PROBLEM_LINES + 2
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(bad):  # each too small in its own way, so each is its own problem
        Image.new("RGB", (4 + index, 40), "gray").save(photos / f"chip{index:02d}.png")
    path = tmp_path / "chips.yaml"
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 32, "iterations": 1}, "jobs": [
        {"contents": ["photos/"], "styles": [str(gallery_dir / "style" / name)
                                             for name in ("starry_night.jpg", "night_cafe.jpg")]}]}))
    planned = nst("plan", str(path), cwd=tmp_path)
    assert planned.returncode == 0, explain(planned)
    warned = [line for line in planned.stdout.splitlines() if line.startswith("warning:")]
    assert warned[0] == "warning: 2 jobs will fail: photos/chip00.png is 4×40 px but must be at least 16×16 px " \
                        "for layer relu5_1", explain(planned)
    assert len(warned) == plan_view.PROBLEM_LINES + 1
    assert warned[-1] == ("warning: ... and 4 more jobs will fail on 2 more input problems; "
                          "`nst plan --all` lists every one")
    every = nst("plan", str(path), "--all", cwd=tmp_path)
    warned = [line for line in every.stdout.splitlines() if line.startswith("warning:")]
    assert len(warned) == bad and "more input problems" not in every.stdout, explain(every)


def test_a_newline_in_a_file_name_keeps_its_warning_on_one_line(gallery_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "bad\nname.jpg").write_bytes(b"")
    path = tmp_path / "nl.yaml"
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 32, "iterations": 1}, "jobs": [
        {"contents": ["photos/"], "styles": [str(gallery_dir / "style" / "starry_night.jpg")]}]}))
    planned = nst("plan", str(path), cwd=tmp_path)
    assert "warning: 1 job will fail: photos/bad name.jpg is empty (0 bytes)\n" in planned.stdout, explain(planned)


def _printed_plan(manifest_path, width: int, force: bool = False, **options) -> list[str]:
    from rich.console import Console

    from pipeline.run import make_plan

    manifest = load_manifest(manifest_path)
    console = Console(width=width, file=io.StringIO(), color_system=None)
    plan_view.print_plan(console, manifest, make_plan(manifest, RenderOptions(force=force)), **options)
    return console.file.getvalue().splitlines()


def test_the_table_keeps_status_iterations_and_job_ids_whole_in_an_80_column_terminal(gallery_dir, tmp_path):
    path = tmp_path / "wide.yaml"  # long names, a sweep, a size some photos are smaller than
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 512, "iterations": 300}, "jobs": [
        {"contents": [str(gallery_dir / "content")], "styles": [str(gallery_dir / "style")],
         "sweep": {"style_weight": [1000, 1000000]}}]}))
    manifest = load_manifest(path)
    for width in (80, 100, 200):
        lines = _printed_plan(path, width)
        assert max(map(len, lines[:-3])) <= width, (width, lines)  # the table; the summary may wrap
        rows = [line for line in lines if re.search(r"\btodo\b", line)]
        assert len(rows) == len(manifest.jobs), (width, lines)
        for job in manifest.jobs:  # each id whole, on a row that says todo and 300 iterations
            (row,) = [line for line in rows if job.job_id in line]
            assert re.search(r"\b300\b", row), (width, row)
    assert "┃ status ┃" in _printed_plan(path, 200)[1] + _printed_plan(path, 200)[2]  # boxed where it fits


def test_a_variant_column_of_dashes_only_is_left_out(gallery_dir, tmp_path):
    header = [line for line in _printed_plan(_tiny_photo_manifest(gallery_dir, tmp_path), 200) if "status" in line]
    assert header and "variant" not in header[0]
    swept = [line for line in _printed_plan(_sweep_manifest(gallery_dir, 2), 200) if "status" in line]
    assert "variant" in swept[0]


def test_entries_that_differ_only_in_their_settings_get_rows_that_say_how(gallery_dir, tmp_path):
    # As the sheet tags the cards stacked in one cell; their rows differed only in the job id.
    pair = {"content": str(gallery_dir / "content" / "chelsea.jpg"), "style": str(gallery_dir / "style" / "night_cafe.jpg")}
    path = tmp_path / "entries.yaml"
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 32, "iterations": 2}, "jobs": [
        pair, {**pair, "settings": {"style_weight": 7}}, {**pair, "settings": {"tv_weight": 2}},
        {"content": str(gallery_dir / "content" / "machu_picchu.jpg"), "style": pair["style"]}]}))
    rows = [line.split("│") for line in _printed_plan(path, 200) if "todo" in line]
    variants = {cells[3].strip(): cells[5].strip() for cells in rows}
    assert variants == {"chelsea": variants["chelsea"], "machu_picchu": "-"}  # one row each, so far
    shown = sorted(cells[5].strip() for cells in rows if cells[3].strip() == "chelsea")
    assert shown == ["style_weight=5,tv_weight=0", "style_weight=5,tv_weight=2", "style_weight=7,tv_weight=0"]


def test_jobs_that_failed_last_time_are_shown_apart_with_why(gallery_dir, tmp_path):
    # From cron's side: a job that failed reads "retry", with its reason, not a plain "todo".
    path = _sweep_manifest(gallery_dir, 3)
    manifest = load_manifest(path)
    failed, interrupted = manifest.jobs[0], manifest.jobs[1]
    manifest.output_dir.mkdir(parents=True)
    (manifest.output_dir / "results.jsonl").write_text(
        json.dumps({"job_id": failed.job_id, "status": "failed", "error": "photo.jpg is truncated or corrupt"}) + "\n"
        + json.dumps({"job_id": interrupted.job_id, "status": "interrupted", "error": "interrupted"}) + "\n")
    lines = _printed_plan(path, 200)
    assert _statuses(manifest, lines) == {failed.job_id: "retry", interrupted.job_id: "todo",
                                          manifest.jobs[2].job_id: "todo"}
    assert (f"note: 1 job failed on its last try and renders again (retry), e.g. "
            f"{failed.output_name.removesuffix('.png')}: photo.jpg is truncated or corrupt") in lines
    # One that timed out keeps its periodic checkpoint, and the note says no work is lost.
    checkpoint_path(manifest.output_dir, failed.job_id).parent.mkdir(parents=True, exist_ok=True)
    checkpoint_path(manifest.output_dir, failed.job_id).write_bytes(b"pixels so far")
    assert any(line.startswith("note: 1 job failed on its last try and renders again (retry; it carries on "
                               "from its checkpoint), e.g. ") for line in _printed_plan(path, 200))


def _statuses(manifest, lines: list[str]) -> dict[str, str]:
    return {job.job_id: [cell.strip() for cell in line.split("│")][2]
            for job in manifest.jobs for line in lines if job.job_id in line and line.startswith("│")}


def test_a_job_that_carries_on_from_its_checkpoint_reads_resume(gallery_dir, tmp_path):
    path = _sweep_manifest(gallery_dir, 3)
    manifest = load_manifest(path)
    interrupted = manifest.jobs[1]
    for job_id in (interrupted.job_id, "0123456789ab"):  # the second is stale: no job of this manifest
        checkpoint_path(manifest.output_dir, job_id).parent.mkdir(parents=True, exist_ok=True)
        checkpoint_path(manifest.output_dir, job_id).write_bytes(b"pixels so far")
    statuses = _statuses(manifest, _printed_plan(path, 200))
    assert statuses == {interrupted.job_id: "resume", manifest.jobs[0].job_id: "todo",
                        manifest.jobs[2].job_id: "todo"}


def test_a_job_rendered_before_whose_files_are_not_whole_reads_redo_with_why(gallery_dir, tmp_path):
    # A hand-edited image would otherwise be overwritten without a word.
    path = _sweep_manifest(gallery_dir, 4)
    manifest = load_manifest(path)
    whole, edited, deleted, new = manifest.jobs
    out = manifest.output_dir
    for job in (whole, edited):
        (out / job.output_name).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out / job.output_name, encode_png(Image.new("RGB", (8, 8)), {JOB_ID_KEY: job.job_id}))
        write_json_atomic(out / job.sidecar_name, {"job_id": job.job_id})
    Image.new("RGB", (8, 8)).save(out / edited.output_name)
    (out / "results.jsonl").write_text("".join(json.dumps({"job_id": job.job_id, "status": "done", "output": job.output_name})
                                               + "\n" for job in (whole, edited, deleted)))
    lines = _printed_plan(path, 200)
    assert _statuses(manifest, lines) == {whole.job_id: "done", edited.job_id: "redo",
                                          deleted.job_id: "redo", new.job_id: "todo"}
    assert (f"note: 2 jobs rendered before render again (redo), e.g. {edited.output_name}: image unreadable, "
            "cut short, or saved again without its job id; it is overwritten") in lines, lines
    forced = _printed_plan(path, 200, force=True)  # a whole image that --force renders again is no redo
    assert _statuses(manifest, forced)[whole.job_id] == "todo"


def test_a_japanese_file_name_shows_whole_where_the_terminal_has_room(gallery_dir, tmp_path):
    photo = tmp_path / "マチュピチュ.jpg"
    photo.write_bytes((gallery_dir / "content" / "chelsea.jpg").read_bytes())
    path = tmp_path / "jp.yaml"
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 32, "iterations": 3}, "jobs": [
        {"content": str(photo), "style": str(gallery_dir / "style" / "starry_night.jpg")}]}, allow_unicode=True))
    lines = _printed_plan(path, 150)
    assert any("マチュピチュ" in line and "…" not in line for line in lines), lines


def test_notes_and_the_summary_are_never_broken_across_lines(gallery_dir, tmp_path):
    # Piped to a file or cron's mail, a sentence split in two cannot be grepped.
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.jpg", "chelsea copy.jpg"):
        (photos / name).write_bytes((gallery_dir / "content" / "chelsea.jpg").read_bytes())
    path = tmp_path / "copies.yaml"
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 32, "iterations": 3}, "jobs": [
        {"contents": [str(photos)], "style": str(gallery_dir / "style" / "starry_night.jpg")}]}))
    lines = _printed_plan(path, 60)
    (note,) = [line for line in lines if line.startswith("note:")]
    assert "chelsea copy.jpg" in note and note.rstrip().endswith("as chelsea"), lines
    (summary,) = [line for line in lines if "to render" in line and "already done" in line]
    assert "estimated" in summary, lines  # the summary's end, on its first line


def test_the_plan_says_when_a_render_holds_the_folder_now(gallery_dir):
    import json
    import os
    import subprocess
    import sys

    path = _sweep_manifest(gallery_dir, 2)
    out = load_manifest(path).output_dir
    out.mkdir(parents=True, exist_ok=True)
    owner = out / ".nst.lock.owner"
    owner.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))  # alive: this process
    (note,) = [line for line in _printed_plan(path, 200) if "a render is running" in line]
    assert f"(pid {os.getpid()} on {os.uname().nodename})" in note
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner.write_text(json.dumps({"pid": int(gone.stdout), "host": os.uname().nodename}))  # killed, file left
    assert not any("a render is running" in line for line in _printed_plan(path, 200))


def test_the_plan_counts_the_images_no_job_of_the_manifest_makes(gallery_dir):
    path = _sweep_manifest(gallery_dir, 2)
    manifest = load_manifest(path)
    out = manifest.output_dir
    (out / "thumbs").mkdir(parents=True)
    (out / "old").mkdir()
    for name in ("chelsea--starry_night--style_weight=9-0123456789ab.png",  # a sweep value since changed
                 "old/chelsea--starry_night-fedcba987654.png",  # under a name template since changed
                 "thumbs/chelsea-0123456789ab.png",  # not an output
                 "holiday.png",  # not named as outputs are: not ours
                 manifest.jobs[0].output_name):  # a job's own (whole or not, not this note's business)
        (out / name).write_bytes(b"png")
    (note,) = [line for line in _printed_plan(path, 200) if "no job of this manifest" in line]
    assert note.startswith(f"note: 2 images in {out} belong to no job of this manifest"), note
    assert "changed since), chelsea--starry_night--style_weight=9-0123456789ab.png, " \
        "old/chelsea--starry_night-fedcba987654.png; no run deletes them" in note, note
    # More than two: two examples, and `--all` lists every one, for deleting by hand.
    (out / "old" / "neuschwanstein--starry_night-abcdefabcdef.png").write_bytes(b"png")
    (note,) = [line for line in _printed_plan(path, 200) if "no job of this manifest" in line]
    assert note.startswith(f"note: 3 images in {out} belong to no job of this manifest"), note
    assert note.endswith("e.g. chelsea--starry_night--style_weight=9-0123456789ab.png, old/chelsea--starry_night-"
                         "fedcba987654.png; no run deletes them; `nst plan --all` lists every one"), note
    lines = _printed_plan(path, 200, row_limit=None)
    (at,) = [index for index, line in enumerate(lines) if "no job of this manifest" in line]
    assert lines[at].endswith("changed since), listed below; no run deletes them"), lines[at]
    assert lines[at + 1:at + 4] == ["  chelsea--starry_night--style_weight=9-0123456789ab.png",
                                    "  old/chelsea--starry_night-fedcba987654.png",
                                    "  old/neuschwanstein--starry_night-abcdefabcdef.png"], lines[at:]


def test_the_variant_column_parts_settings_with_semicolons_not_the_commas_inside_values(gallery_dir):
    path = gallery_dir.parent / "two.yaml"
    entry = {"content": str(gallery_dir / "content" / "chelsea.jpg"),
             "style": str(gallery_dir / "style" / "starry_night.jpg"),
             "sweep": {"scales": [[32, 48]], "style_weight": [2]}}
    path.write_text(yaml.safe_dump({"output": "out", "settings": {"size": 48, "iterations": 3}, "jobs": [entry]}))
    assert any("│ scales=32,48; style_weight=2 " in line for line in _printed_plan(path, 200))


def test_the_plan_warns_when_torchvision_weights_are_not_on_this_machine(gallery_dir, tmp_path, monkeypatch):
    # Offline, every job with them failed hours into the night, the plan silent.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    manifest = _tiny_photo_manifest(gallery_dir, tmp_path, weights="torchvision")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    warning = (f"warning: 1 job uses weights: torchvision, which is not in this machine's torch cache ({cached}): "
               "workers download it")
    assert any(line.startswith(warning) for line in _printed_plan(manifest, 400)), _printed_plan(manifest, 400)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"the checkpoint")
    assert not any("torchvision" in line for line in _printed_plan(manifest, 400))
    caffe = _tiny_photo_manifest(gallery_dir, tmp_path)  # bundled: nothing to say
    cached.unlink()
    assert not any("torchvision" in line for line in _printed_plan(caffe, 400))
