"""The `nst` command's entry point: every way it ends is one line and an exit code.

Kept free of heavy imports so a Ctrl-C while the command line is still loading
(typer, rich, yaml: about 0.3 s) is caught here, and so click's usage errors,
which typer draws as a multi-line box, become the `nst: …` line every other
error is: what cron mails and what a log grep finds.
"""

from __future__ import annotations

import os
import sys

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


def _exit(message: str, code: int) -> None:
    print(f"nst: {message}", file=sys.stderr)
    sys.exit(code)


def _click_errors():
    """click's exception classes: typer 0.2x vendors its own copy of click, and
    its errors are not click's; earlier typers raise click's own."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - typer before the vendored copy
        from click import exceptions
    return exceptions


def _reopen_closed_standard_streams() -> None:
    """`nst render … >&-` from a careless crontab: a closed stdout or stderr
    would crash the command line (sys.stdout is None) or the workers it starts
    (they inherit the closed descriptor). Point it at /dev/null instead;
    nst.log keeps the run's story."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def _never_fail_on_encoding() -> None:
    """A terminal or pipe that takes only ASCII (PYTHONIOENCODING=ascii, an old
    cron's C locale): "×" in a plan or a file's name raised UnicodeEncodeError,
    a traceback instead of the plan. Such characters print escaped instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main() -> None:
    _reopen_closed_standard_streams()
    _never_fail_on_encoding()
    try:
        import typer

        from .cli import app
    except KeyboardInterrupt:
        _exit("interrupted (SIGINT)", EXIT_INTERRUPTED)
    errors = _click_errors()
    try:
        outcome = app(standalone_mode=False, prog_name="nst")
    except errors.NoArgsIsHelpError as error:  # a bare `nst`: the help is the answer
        error.show()
        sys.exit(EXIT_USAGE)
    except errors.UsageError as error:  # a typo'd flag or command, a value of the wrong type
        where = error.ctx.command_path if error.ctx else _command_path(app, sys.argv[1:])
        _exit(f"{error.format_message()} (see '{where} --help')", EXIT_USAGE)
    except errors.ClickException as error:
        _exit(error.format_message(), error.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # between startup and a command's own handling
        _exit("interrupted (SIGINT)", EXIT_INTERRUPTED)
    sys.exit(outcome if isinstance(outcome, int) else 0)


def _command_path(app, args: list[str]) -> str:
    """`nst render` for `nst render x --only`: click names no command on some
    errors (an option missing its value), and the help to see is the command's."""
    import typer

    commands = typer.main.get_command(app).commands
    named = next((arg for arg in args if not arg.startswith("-")), None)
    return f"nst {named}" if named in commands else "nst"
