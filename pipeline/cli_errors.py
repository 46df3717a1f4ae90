"""How `nst` ends when something goes wrong: one line on stderr and an exit
code, never a traceback, and the exit codes the README promises for signals."""

from __future__ import annotations

import errno
import signal
from contextlib import contextmanager

import typer
from rich.console import Console

from .run import EXIT_FAILED, EXIT_USAGE
from .stop_signals import EXIT_SIGNAL, Terminated

err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int) -> None:
    err.print(f"nst: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


# OSErrors that mean a path the user gave is wrong (usage, exit 2), as opposed
# to the machine failing (a full disk, an I/O error: exit 1).
_USAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR,
                 errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP}


def _raise_terminated(signum, frame):
    raise Terminated(signum)


_TERMINATED = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)"}


@contextmanager
def one_line_errors():
    """The safety net under every command that touches files: an OSError that
    no check foresaw is still one line, never a traceback. A Ctrl-C or SIGTERM
    outside the render's own signal handling (planning, waiting with --wait)
    exits 130, 143 or 129 (SIGHUP) as the README promises, with a line that says so, where
    click would print "Aborted!" and exit 1, and SIGTERM would end it silently."""
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in _TERMINATED}
    try:
        yield
    except KeyboardInterrupt:
        fail("interrupted (SIGINT)", EXIT_SIGNAL[signal.SIGINT])
    except Terminated as stopped:
        fail(_TERMINATED[stopped.signum], EXIT_SIGNAL[stopped.signum])
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        fail(f"{where}{error.strerror or error}", EXIT_USAGE if error.errno in _USAGE_ERRNOS else EXIT_FAILED)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
