"""`nst` ends in one line and an exit code however it ends: click's usage errors
and a Ctrl-C while the command line is still loading included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from cli_helpers import SAMPLES, explain, nst, nst_env, write_manifest


@pytest.mark.parametrize(("args", "said"), [
    (["render", "demo", "--job-timeout", "abc"], "nst: Invalid value for '--job-timeout': "),
    (["render", "demo", "--frce"], "nst: No such option: --frce (Possible options: --force) (see 'nst render --help')"),
    (["rendr", "demo"], "nst: No such command 'rendr'. Did you mean 'render'? (see 'nst --help')"),
    (["plan"], "nst: Missing argument 'MANIFEST'. (see 'nst plan --help')"),
    # click names no command for a missing value; the help to see is still the command's.
    (["render", "demo", "--only"], "nst: Option '--only' requires an argument. (see 'nst render --help')"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, said, tmp_path):
    result = nst(*args, cwd=tmp_path)
    assert result.returncode == 2, explain(result)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(said), explain(result)
    assert result.stdout == ""


def test_a_bare_nst_prints_the_help(tmp_path):
    result = nst(cwd=tmp_path)
    assert result.returncode == 2 and "Usage: nst [OPTIONS] COMMAND" in result.stdout + result.stderr, explain(result)


@pytest.mark.parametrize("args", [["-h"], ["render", "-h"], ["cache", "clear", "-h"]])
def test_dash_h_is_help(args, tmp_path):
    result = nst(*args, cwd=tmp_path)
    assert result.returncode == 0 and "Usage: nst" in result.stdout, explain(result)
    assert result.stdout == nst(*args[:-1], "--help", cwd=tmp_path).stdout


INTERRUPTED_WHILE_LOADING = """
import sys

class CtrlCDuringImport:  # as if Ctrl-C landed while typer and rich load
    def find_spec(self, name, path=None, target=None):
        if name == "pipeline.cli":
            raise KeyboardInterrupt

sys.meta_path.insert(0, CtrlCDuringImport())
sys.argv = ["nst", "devices"]
from pipeline.entry import main
main()
"""


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_exit_130(tmp_path):
    result = subprocess.run([sys.executable, "-c", INTERRUPTED_WHILE_LOADING], cwd=tmp_path, env=nst_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (130, "nst: interrupted (SIGINT)\n"), explain(result)


def test_the_installed_command_starts_in_the_entry_module():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "nst"]
    assert script.value == "pipeline.entry:main"


def test_every_option_of_every_command_says_what_it_does():
    # `nst plan --help` listed --only with an empty description. (typer vendors
    # its own click, so its classes are told apart by name, not by isinstance.)
    import typer

    from pipeline.cli import app

    def commands(group, prefix: str):
        for name, command in getattr(group, "commands", {}).items():
            yield f"{prefix} {name}", command
            yield from commands(command, f"{prefix} {name}")

    found = [(f"{path} {param.opts[0]}", param.help) for path, command in
             commands(typer.main.get_command(app), "nst") for param in command.params
             if param.param_type_name == "option"]
    assert "nst plan --only" in dict(found)  # the walk does reach the options
    assert [name for name, text in found if not text] == []


def test_help_shows_what_each_option_takes_and_flags_take_nothing(tmp_path):
    result = nst("render", "--help", cwd=tmp_path, COLUMNS="120")
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ --")}
    assert "{MANIFEST}" in result.stdout, explain(result)
    for flag in ("--force", "--dry-run", "--quiet", "--wait"):
        assert "<bool>" not in rows[flag], rows[flag]  # a flag takes no value
    assert " GLOB " in rows["--only"] and " SECONDS " in rows["--job-timeout"], rows


@pytest.mark.parametrize("closed", [1, 2])
def test_a_closed_stdout_or_stderr_costs_nothing_but_what_it_would_have_shown(closed, tmp_path):
    # `nst render m.yaml >&-` in a crontab: Python gets sys.stdout None, and the
    # workers inherit the closed descriptor.
    from cli_helpers import SAMPLES, nst_command, write_manifest

    manifest = write_manifest(tmp_path / "m.yaml", [SAMPLES / "content" / "chelsea.jpg"],
                              [SAMPLES / "style" / "night_cafe.jpg"])
    kept = tmp_path / "kept.txt"
    with open(kept, "w") as other:
        result = subprocess.run(nst_command("render", manifest, "--devices", "cpu"), cwd=tmp_path, env=nst_env(),
                                stdin=subprocess.DEVNULL, stdout=other if closed == 2 else None,
                                stderr=other if closed == 1 else None, preexec_fn=lambda: os.close(closed),
                                timeout=120, check=False)
    assert result.returncode == 0, kept.read_text()
    assert "Traceback" not in kept.read_text()
    assert "finished: 1 rendered" in (tmp_path / "out" / "nst.log").read_text()


def test_a_stdout_that_takes_only_ascii_gets_escapes_not_a_traceback(tmp_path):
    # PYTHONIOENCODING=ascii, or an old cron's C locale: "×" in the help and a
    # file's accented name raised UnicodeEncodeError from inside rich.
    shutil.copyfile(SAMPLES / "content" / "chelsea.jpg", tmp_path / "café.jpg")
    manifest = write_manifest(tmp_path / "m.yaml", [tmp_path / "café.jpg"], [SAMPLES / "style" / "starry_night.jpg"])
    for args in (["--help"], ["plan", manifest]):
        result = nst(*args, cwd=tmp_path, PYTHONIOENCODING="ascii")
        assert result.returncode == 0 and "Traceback" not in result.stderr, explain(result)
        assert ("contents \\xd7 styles" if args == ["--help"] else "caf\\xe9") in result.stdout, explain(result)
