"""`nst render` end to end, as real subprocesses without a terminal (cron, CI):
a first run with plain progress lines, a rerun that renders nothing, --force
with --only, a new style column, and Ctrl-C."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import (
    LOG_LINE,
    TINY,
    explain,
    nst_command,
    nst_env,
    png_text,
    pngs,
    read_sheet,
    render,
    result_lines,
    write_manifest,
)

pytestmark = pytest.mark.slow


def _mtimes(paths: list[Path]) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in paths}


def _check_provenance(output_dir: Path, record: dict) -> None:
    """The image names its job in its own text chunk; the sidecar says how it was made."""
    sidecar = json.loads((output_dir / record["sidecar"]).read_text())
    assert png_text(output_dir / record["output"])["nst:job_id"] == sidecar["job_id"] == record["job_id"]
    assert sidecar["settings"]["size"] == TINY["size"]
    assert sidecar["settings"]["iterations"] == TINY["iterations"]
    # The values the engine used where the settings say "automatic" (0, []), which stay
    # as written because they are the job's identity.
    assert (sidecar["settings"]["learning_rate"], sidecar["settings"]["scales"]) == (0.0, [])
    assert sidecar["effective"] == {"learning_rate": 1.0, "scales": [TINY["size"]]}
    assert record["effective"] == sidecar["effective"]
    assert sidecar["seed"] == sidecar["settings"]["seed"]
    assert re.fullmatch(r"caffe:[0-9a-f]{64}", sidecar["weights"])
    assert {"python", "torch", "pillow", "nst-gallery"} <= set(sidecar["versions"])
    assert sidecar["device"] == "cpu" and sidecar["device_name"]
    assert sidecar["stats"]["seconds"] > 0
    assert math.isfinite(sidecar["stats"]["losses"]["total"])
    assert {"style", "content"} <= set(sidecar["stats"]["losses"])
    assert set(sidecar["stats"]["cache"]) >= {"hits", "misses"}
    assert sidecar["content"].endswith(".jpg") and len(sidecar["styles"]) == 1


def _check_plain_progress(result, output_dir: Path) -> None:
    """Without a terminal, progress is plain timestamped lines, the same as in nst.log."""
    lines = result.stderr.splitlines()
    assert lines, explain(result)
    # No progress bars, colour codes or carriage returns: every line is a log line.
    assert all(LOG_LINE.match(line) for line in lines), explain(result)
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    text = result.stderr
    for phrase in ("2 to render", "worker 0 starts ", "done chelsea",
                   "done neuschwanstein", "finished: 2 rendered, 0 failed; nothing left for the next run"):
        assert phrase in text, explain(result)
    assert "iteration 3/3" not in text  # the "done" line gives the final loss; one figure, not two
    assert len(re.findall(r"worker 0 on cpu .* is ready", text)) == 1, explain(result)
    log = (output_dir / "nst.log").read_text().splitlines()
    # The same lines, but for the run's start and end marks, which are the log's alone.
    marks = [line for line in log if " INFO run started: " in line or " INFO run ended: " in line]
    assert len(marks) == 2 and not [line for line in lines if " run started: " in line or " run ended: " in line]
    assert [line for line in log if "INFO" in line and line not in marks] == [line for line in lines if "INFO" in line]


def test_render_then_rerun_force_and_new_style(gallery_dir, tmp_path):
    content, style = gallery_dir / "content", gallery_dir / "style"
    contents = [content / "chelsea.jpg", content / "neuschwanstein.jpg"]
    manifest = write_manifest(tmp_path / "gallery.yaml", contents, [style / "starry_night.jpg"])
    out = tmp_path / "out"

    first = render(manifest)
    assert first.returncode == 0, explain(first)
    records = result_lines(out)
    assert [r["status"] for r in records] == ["done", "done"]
    assert len({r["job_id"] for r in records}) == 2
    assert len(pngs(out)) == 2
    for record in records:
        _check_provenance(out, record)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["jobs"], summary["rendered"], summary["failed"], summary["exit_code"]) == (2, 2, 0, 0)
    _check_plain_progress(first, out)
    cards = read_sheet(out).cards
    assert sorted(c["job_id"] for c in cards) == sorted(r["job_id"] for r in records)
    assert {c["status"] for c in cards} == {"done"}

    # The same manifest again: everything is up to date.
    before = _mtimes(pngs(out))
    second = render(manifest)
    assert second.returncode == 0, explain(second)
    assert "nothing to render" in second.stderr
    assert len(result_lines(out)) == 2
    assert _mtimes(pngs(out)) == before

    # --force renders again, and --only GLOB limits a run to the jobs it matches.
    third = render(manifest, "--force", "--only", "chelsea*")
    assert third.returncode == 0, explain(third)
    again = result_lines(out)[2:]
    assert [(r["content_label"], r["status"]) for r in again] == [("chelsea", "done")]
    after_force = _mtimes(pngs(out))
    for name, mtime in before.items():
        assert (after_force[name] > mtime) == name.startswith("chelsea"), name

    # A new style in the manifest: only its column renders.
    write_manifest(manifest, contents, [style / "starry_night.jpg", style / "night_cafe.jpg"])
    seen = len(result_lines(out))
    fourth = render(manifest)
    assert fourth.returncode == 0, explain(fourth)
    new = result_lines(out)[seen:]
    assert sorted((r["content_label"], r["style_label"]) for r in new) == [
        ("chelsea", "night_cafe"), ("neuschwanstein", "night_cafe")]
    assert len(pngs(out)) == 4
    final = _mtimes(pngs(out))
    assert {name: final[name] for name in after_force} == after_force
    assert "2 already done, 2 to render" in fourth.stderr
    assert [c["status"] for c in read_sheet(out).cards] == ["done"] * 4


# -- Ctrl-C ------------------------------------------------------------------------


def _wait_for(predicate, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"nst exited ({proc.returncode}) before it could be interrupted:\n"
                        + proc.communicate()[1])
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("nst never got going:\n" + proc.communicate()[1])
        time.sleep(0.05)


def _log(output_dir: Path) -> str:
    try:
        return (output_dir / "nst.log").read_text()
    except FileNotFoundError:
        return ""


def _maps_torch(pid: int) -> bool | None:
    """Whether a live process has libtorch mapped; None where /proc cannot tell."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None


def _interrupt(tmp_path: Path, gallery_dir: Path) -> tuple[int, str, Path, bool | None]:
    """Start a render of four slower jobs, Ctrl-C the parent once the first is done."""
    content = gallery_dir / "content"
    manifest = write_manifest(tmp_path / "m.yaml", sorted(content.glob("*.jpg")),
                              [gallery_dir / "style" / "starry_night.jpg"],
                              settings={"size": 48, "iterations": 60})
    out = tmp_path / "out"
    proc = subprocess.Popen(nst_command("render", manifest, "--devices", "cpu"), cwd=tmp_path,
                            env=nst_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # One job done and the next one running: "starts" is logged once it is handed over.
    _wait_for(lambda: len(result_lines(out)) >= 1 and _log(out).count(" starts ") >= 2, proc, timeout=120)
    parent_has_torch = _maps_torch(proc.pid)
    proc.send_signal(signal.SIGINT)  # the parent only, as a terminal's Ctrl-C reaches it first
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("nst did not stop within 60 s of SIGINT:\n" + proc.communicate()[1])
    return proc.returncode, stderr, out, parent_has_torch


def test_sigint_stops_with_130_and_leaves_only_whole_files(gallery_dir, tmp_path):
    code, stderr, out, parent_has_torch = _interrupt(tmp_path, gallery_dir)
    assert code == 130, stderr
    assert "received SIGINT" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 130
    assert summary["done"] >= 1 and summary["done"] < summary["jobs"] == 4
    assert not list(out.rglob("*.tmp")), list(out.rglob("*.tmp"))
    records = result_lines(out)
    # The job that was running checkpoints and is recorded as interrupted, not failed.
    assert "interrupted" in [r["status"] for r in records], stderr
    assert "failed" not in [r["status"] for r in records], stderr
    done = [r for r in records if r["status"] == "done"]
    assert len(pngs(out)) == len(done) >= 1
    for record in done:
        assert png_text(out / record["output"])["nst:job_id"] == record["job_id"]
    # The parent process schedules; only its workers load torch (DESIGN: boundary).
    assert parent_has_torch in (False, None)
