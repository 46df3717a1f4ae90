"""Ctrl-C or SIGTERM before the render's own signal handling takes over (while
planning, or while queued behind another run with --wait) exits 130 or 143, as
the README's exit-code table says, with a line saying why: not click's
"Aborted!" and 1, nor a silent death."""

from __future__ import annotations

import select
import signal
import subprocess
import time

import pytest
from cli_helpers import nst_command, nst_env, write_manifest
from filelock import FileLock
from typer.testing import CliRunner


def _manifest(gallery_dir, tmp_path):
    return write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                          [gallery_dir / "style" / "night_cafe.jpg"])


@pytest.mark.parametrize(("sent", "code", "said"), [(signal.SIGINT, 130, "interrupted (SIGINT)"),
                                                    (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_while_waiting_for_a_busy_folder_exits_with_its_code(gallery_dir, tmp_path, sent, code, said):
    manifest = _manifest(gallery_dir, tmp_path)
    (tmp_path / "out").mkdir()
    with FileLock(str(tmp_path / "out" / ".nst.lock")):  # another run holds the folder
        proc = subprocess.Popen(nst_command("render", manifest, "--devices", "cpu", "--wait"), cwd=tmp_path,
                                env=nst_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline, first = time.monotonic() + 60, ""
        while not first and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stderr], [], [], 0.2)[0]:
                first = proc.stderr.readline()
        assert "is busy" in first and "waiting for it" in first, first
        proc.send_signal(sent)
        try:
            _, rest = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == code, first + rest
    assert rest == f"nst: {said}\n", rest
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_ctrl_c_while_planning_exits_130(gallery_dir, tmp_path, monkeypatch):
    from pipeline import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "make_plan", interrupted)
    manifest = _manifest(gallery_dir, tmp_path)
    for args in (["plan", str(manifest)], ["render", str(manifest), "--dry-run"]):
        result = CliRunner().invoke(cli.app, args)
        assert result.exit_code == 130, result.output
        assert "Aborted" not in result.output and "interrupted (SIGINT)" in result.output
