"""`nst plan` on big sweeps: a readable table, quickly, with every job counted."""

from __future__ import annotations

import re

import yaml
from cli_helpers import explain, nst

from nst_engine import images
from nst_engine.settings import RenderSettings
from pipeline import plan_view
from pipeline.cache_admin import cached_style_count


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
    asked = [(painting, settings) for painting in [*paintings, "/no/such.jpg"] for settings in sweep]
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
    assert "note: 1 of the jobs to render come out smaller than their size" in planned.stdout
