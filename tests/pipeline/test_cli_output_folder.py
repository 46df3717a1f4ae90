"""An output folder that cannot be used is one line naming it and where the
manifest sets it, with exit code 2, for render, --dry-run and plan (which
only notes a folder it can read but not write); and
an OSError that no check foresaw is still one line, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from cli_helpers import explain, nst, write_manifest

COMMANDS = (("render", "--devices", "cpu"), ("render", "--dry-run"), ("plan",))


def _manifest(gallery_dir, tmp_path, output: str):
    # `output:` is the first key: line 1 of the manifest.
    return write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                          [gallery_dir / "style" / "night_cafe.jpg"], output=output)


def _assert_one_line(result, expected: str, *, stdout: bool = False) -> None:
    assert result.returncode == 2, explain(result)
    assert result.stderr == expected + "\n", explain(result)
    assert bool(result.stdout) == stdout, explain(result)


@pytest.mark.parametrize("output, reason", [
    ("taken", "it is a file, not a folder"),
    ("taken/sub", "{tmp}/taken is a file, not a folder"),
])
def test_an_output_folder_where_a_file_is(gallery_dir, tmp_path, output, reason):
    (tmp_path / "taken").write_text("a file, not a folder")
    manifest = _manifest(gallery_dir, tmp_path, output)
    for command, *flags in COMMANDS:
        result = nst(command, manifest, *flags, cwd=tmp_path)
        _assert_one_line(result, f"nst: m.yaml:1: output: cannot use output folder {tmp_path / output}: "
                                 + reason.format(tmp=tmp_path))


@pytest.fixture
def unwritable(tmp_path):
    """A folder no run can write into, and the reason the system gives: a
    read-only tmpfs as root (who ignores permission bits), else mode 0o555."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder, "Permission denied"
        folder.chmod(0o755)
        return
    mount = shutil.which("mount")
    if mount is None or subprocess.run([mount, "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)],
                                       capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        yield folder, "Read-only file system"
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("inside", [False, True])
def test_an_output_folder_that_cannot_be_written(gallery_dir, tmp_path, unwritable, inside):
    folder, reason = unwritable
    target = folder / "gallery" if inside else folder  # created by the run, or there already
    manifest = _manifest(gallery_dir, tmp_path, str(target))
    problem = f"m.yaml:1: output: cannot use output folder {target}: {reason}"
    for command, *flags in COMMANDS[:2]:
        result = nst(command, manifest, *flags, cwd=tmp_path)
        _assert_one_line(result, f"nst: {problem}")
    # nst plan only reads the folder (a finished gallery on a read-only share):
    # its table, and a note of what a render would meet.
    result = nst("plan", manifest, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert "1 to render, 0 already done" in result.stdout, explain(result)
    assert result.stderr == f"nst: note: {problem} (nst render would stop there)\n", explain(result)


def test_the_default_output_folder_names_the_manifest(gallery_dir, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"jobs:\n  - content: {gallery_dir / 'content' / 'chelsea.jpg'}\n"
                        f"    style: {gallery_dir / 'style' / 'night_cafe.jpg'}\n")
    (tmp_path / "out").write_text("a file where out/m would go")
    result = nst("plan", manifest, cwd=tmp_path)
    _assert_one_line(result, f"nst: m.yaml: cannot use output folder {tmp_path / 'out' / 'm'}: "
                             f"{tmp_path / 'out'} is a file, not a folder")


def test_an_unforeseen_os_error_is_one_line_not_a_traceback(gallery_dir, tmp_path):
    manifest = _manifest(gallery_dir, tmp_path, "out")
    (tmp_path / "out" / "results.jsonl").mkdir(parents=True)  # a folder where a file belongs
    for args in (("plan", manifest), ("report", tmp_path / "out")):
        result = nst(*args, cwd=tmp_path)
        # plan has printed its table by the time it reads the folder's history
        _assert_one_line(result, f"nst: {tmp_path / 'out' / 'results.jsonl'}: Is a directory",
                         stdout=args[0] == "plan")


def test_an_unwritable_log_costs_the_log_not_the_run(gallery_dir, tmp_path):
    # A nst.log the run cannot open (left owned by root by a `sudo` run; here a folder).
    manifest = _manifest(gallery_dir, tmp_path, "out")
    (tmp_path / "out" / "nst.log").mkdir(parents=True)
    result = nst("render", manifest, "--devices", "cpu", cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert f"nst: could not write {tmp_path / 'out' / 'nst.log'}: Is a directory; the run goes on without it" \
        in result.stderr, explain(result)
    assert "finished: 1 rendered" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "out").glob("chelsea--night_cafe-*.png"))


def test_an_output_folder_a_system_folder_will_not_take_is_foreseen_by_the_plan(gallery_dir, tmp_path):
    # /proc passes every permission check as root, then refuses the mkdir: the
    # plan said nothing, and the night's render stopped at once.
    target = "/proc/nst-test-output"
    manifest = _manifest(gallery_dir, tmp_path, target)
    result = nst("plan", manifest, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert result.stderr.startswith(f"nst: note: m.yaml:1: output: cannot use output folder {target}: "), explain(result)
    assert result.stderr.endswith(" (nst render would stop there)\n"), explain(result)
    assert not os.path.exists(target) and not list(tmp_path.glob(".nst-probe-*"))
