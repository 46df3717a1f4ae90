"""nst.log's marks of each run's start and end, and the warning of a last run that never ended."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import SAMPLES, explain, nst, render, write_manifest

from pipeline.manifest import load_manifest
from pipeline.run import RenderOptions
from pipeline.run_marks import command_line, note_run_end, note_run_start, other_manifest


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="nst")
    nst_log = logging.getLogger("nst")
    propagates, nst_log.propagate = nst_log.propagate, True  # setup_logging turns it off for a real run
    yield lambda: [(record.levelname, record.getMessage()) for record in caplog.records]
    nst_log.propagate = propagates


def _manifest(folder: Path) -> SimpleNamespace:
    return SimpleNamespace(path=folder / "my gallery.yaml", output_dir=folder / "out")


def test_the_command_line_names_the_manifest_and_every_flag_that_changes_the_run(tmp_path):
    options = RenderOptions(devices=("cuda:0", "cuda:1"), only="chelsea*", force=True, job_timeout=600, quiet=True)
    assert command_line(_manifest(tmp_path), options) == (
        f"nst render '{tmp_path}/my gallery.yaml' --devices cuda:0,cuda:1 --only 'chelsea*' --force "
        "--job-timeout 600 --quiet")
    assert command_line(_manifest(tmp_path), RenderOptions()) == f"nst render '{tmp_path}/my gallery.yaml'"
    # Workers on one device as the flag takes them: `cpu*99999` once wrote a 400 kB line.
    many = RenderOptions(devices=("cpu",) * 99_999 + ("cuda:0", "cuda:0"))
    assert command_line(_manifest(tmp_path), many).endswith(" --devices 'cpu*99999,cuda:0*2'")


@pytest.mark.parametrize(("summary", "warned"), [
    (None, False),  # the first run here
    ({"started_at": "2026-11-22T01:00:00Z", "exit_code": 0, "manifest": "SAME"}, False),
    ({"started_at": "2026-11-22T01:00:00Z", "exit_code": 143, "manifest": "SAME"}, False),
    ({"started_at": "2026-11-22T01:00:00Z", "exit_code": None, "manifest": "SAME"}, True),
])
def test_only_a_last_run_that_left_no_exit_code_is_warned_of(tmp_path, lines, summary, warned):
    manifest = _manifest(tmp_path)
    manifest.output_dir.mkdir()
    if summary is not None:  # left by a run of this same manifest
        (manifest.output_dir / "summary.json").write_text(json.dumps({**summary, "manifest": str(manifest.path)}))
    note_run_start(manifest, RenderOptions())
    seen = lines()
    assert seen[0][1].startswith("run started: nst render ") and seen[0][0] == "INFO"
    warnings = [message for level, message in seen if level == "WARNING"]
    assert warnings == ([
        "the last run here (my gallery.yaml, started 2026-11-22T01:00:00Z) never ended: it was killed, or the machine "
        "went down; this run takes up what it left"] if warned else [])


def test_the_end_mark_gives_the_exit_code_or_the_error(lines):
    note_run_end(1)
    note_run_end(75)
    note_run_end(None, OSError("No space left on device"))
    assert [message for _, message in lines()] == [
        "run ended: exit code 1 (some jobs failed)", "run ended: exit code 75",
        "run ended by an error: No space left on device"]


@pytest.mark.slow
def test_two_manifests_sharing_an_output_folder_are_warned_of_and_keep_each_others_checkpoints(tmp_path):
    style = [SAMPLES / "style" / "starry_night.jpg"]
    first = write_manifest(tmp_path / "portraits.yaml", [SAMPLES / "content" / "chelsea.jpg"], style)
    second = write_manifest(tmp_path / "castles.yaml", [SAMPLES / "content" / "neuschwanstein.jpg"], style)
    assert render(first).returncode == 0
    # What portraits.yaml's next, interrupted job would leave: not stale for castles.yaml.
    theirs = tmp_path / "out" / ".checkpoints" / "0123456789ab.pt"
    theirs.parent.mkdir(exist_ok=True)
    theirs.write_bytes(b"their pixels")
    warning = f"the last run in this output folder rendered another manifest, {first}: "
    planned = nst("plan", second, cwd=tmp_path)
    assert f"warning: {warning}" in planned.stdout, explain(planned)
    # Its images are not this manifest's, but not stale either.
    assert "belongs to no job of this manifest (portraits.yaml's, or a setting or an input changed since)" \
        in planned.stdout, explain(planned)
    rendered = render(second)
    assert rendered.returncode == 0 and warning in rendered.stderr, explain(rendered)
    assert theirs.exists(), explain(rendered)
    # The same manifest again: no warning, and its full run sweeps what is not its own, as always.
    again = render(second)
    assert again.returncode == 0 and "another manifest" not in again.stderr, explain(again)
    assert not theirs.exists()



def test_a_manifest_renamed_since_the_last_run_is_not_another_manifest(tmp_path):
    style = [SAMPLES / "style" / "starry_night.jpg"]
    old = write_manifest(tmp_path / "gallery.yaml", [SAMPLES / "content" / "chelsea.jpg"], style)
    manifest = load_manifest(old)
    manifest.output_dir.mkdir()
    (manifest.output_dir / "summary.json").write_text(json.dumps({"manifest": str(old), "exit_code": 0}))
    renamed = old.rename(tmp_path / "museum.yaml")
    assert other_manifest(load_manifest(renamed)) is None  # gallery.yaml is gone: nothing shares the folder
    write_manifest(old, [SAMPLES / "content" / "neuschwanstein.jpg"], style)  # a gallery.yaml again
    assert other_manifest(load_manifest(renamed)) == str(old)


@pytest.fixture
def restore_nst_logger():
    nst_log = logging.getLogger("nst")
    handlers, propagates, level = list(nst_log.handlers), nst_log.propagate, nst_log.level
    yield
    for handler in nst_log.handlers:
        handler.close()
    nst_log.handlers[:], nst_log.propagate = handlers, propagates
    nst_log.setLevel(level)


@pytest.mark.parametrize("over", [True, False], ids=["past-the-limit", "under-it"])
def test_a_run_moves_a_log_past_its_limit_to_nst_log_1(tmp_path, monkeypatch, restore_nst_logger, over):
    from pipeline import display

    monkeypatch.setattr(display, "LOG_ROTATE_BYTES", 100)
    log_file = tmp_path / "nst.log"
    old = "2026-11-21T01:00:00+0000 INFO an earlier run\n" * (3 if over else 1)  # 135 or 45 bytes
    log_file.write_text(old)
    (tmp_path / "nst.log.1").write_text("the run before that\n")
    display.setup_logging(log_file, console=None, quiet=True)
    logging.getLogger("nst").info("this run")
    if over:
        assert (tmp_path / "nst.log.1").read_text() == old  # replaced: at most one old log is kept
        assert [line.split(" ", 2)[2] for line in log_file.read_text().splitlines()] == [
            "the lines of earlier runs are in nst.log.1", "this run"]
    else:
        assert (tmp_path / "nst.log.1").read_text() == "the run before that\n"
        assert log_file.read_text().startswith(old) and log_file.read_text().endswith(" INFO this run\n")
