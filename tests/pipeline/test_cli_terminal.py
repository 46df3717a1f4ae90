"""`nst render` at a real terminal (a pseudo-terminal, as a person's shell gives
it): the rich bars, and above them the lines a person must not miss."""

from __future__ import annotations

import re

import pytest
from cli_helpers import nst_in_terminal, result_lines, screen_text, write_manifest

pytestmark = pytest.mark.slow


def _gallery_with_a_bad_image(gallery_dir, tmp_path):
    contents = tmp_path / "contents"
    contents.mkdir()
    (contents / "chelsea.jpg").write_bytes((gallery_dir / "content" / "chelsea.jpg").read_bytes())
    (contents / "fake.png").write_text("not an image")
    return write_manifest(tmp_path / "tiny_night.yaml", [contents], [gallery_dir / "style" / "night_cafe.jpg"],
                          settings={"size": 32, "iterations": 2})


def test_a_terminal_shows_failures_and_the_summary_above_the_bars(gallery_dir, tmp_path):
    manifest = _gallery_with_a_bad_image(gallery_dir, tmp_path)
    code, raw = nst_in_terminal("render", manifest, "--devices", "cpu", cwd=tmp_path)
    screen = screen_text(raw)
    assert code == 1, screen
    assert re.search(r"error: failed fake--night_cafe-\w+: contents/fake\.png is not an image", screen), screen
    assert re.search(r"finished: 1 rendered, 1 failed; the next run tries 1 failed job again, .* -> .*index\.html", screen), screen
    assert "━" in screen, screen  # the live bars were drawn
    # The overall bar carries the manifest's name.
    assert re.search(r"^tiny_night\s+━", screen, re.MULTILINE), screen
    assert "Traceback" not in screen
    # Per-job chatter stays in nst.log; the bars already show it.
    assert "worker 0 starts" not in screen
    assert "worker 0 starts" in (tmp_path / "out" / "nst.log").read_text()

    again, raw = nst_in_terminal("render", manifest, "--devices", "cpu", "--only", "chelsea*", cwd=tmp_path)
    assert again == 0, screen_text(raw)
    # The rest of the gallery is not up to date: fake.png failed, and the line says so.
    assert ("nothing to render: the jobs --only 'chelsea*' selects are up to date; the next run without "
            "--only tries 1 failed job again") in screen_text(raw)


def test_quiet_at_a_terminal_still_shows_errors(gallery_dir, tmp_path):
    manifest = _gallery_with_a_bad_image(gallery_dir, tmp_path)
    code, raw = nst_in_terminal("render", manifest, "--devices", "cpu", "-q", cwd=tmp_path)
    screen = screen_text(raw)
    assert code == 1, screen
    assert re.search(r"error: failed fake--night_cafe-\w+: contents/fake\.png is not an image", screen), screen
    # Quiet: no bars and no progress, only what needs a look: the failure, then
    # (jobs failed) the last line with the counts and the sheet's path.
    assert "━" not in screen and "starts" not in screen, screen
    assert re.search(r"warning: finished: 1 rendered, 1 failed; the next run tries 1 failed job again", screen), screen
    assert [r["status"] for r in result_lines(tmp_path / "out")].count("done") == 1
