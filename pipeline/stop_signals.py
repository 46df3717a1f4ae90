"""What `nst render` does on SIGINT, SIGTERM and SIGHUP: the first asks the
executor to stop gently, a second to stop now."""

from __future__ import annotations

import logging
import signal
import time
from contextlib import contextmanager

from .events import StopSignal

log = logging.getLogger("nst")

# SIGHUP: the SSH session of a run started by hand closed; stopped as gently.
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}

# A second signal sooner than this after the first is the same one delivered twice.
SAME_SIGNAL_SECONDS = 0.25

# What a first signal does, in words that match what the executors do.
_STOPPING = {
    "local": "stopping: no new jobs start; running jobs save a checkpoint at their next "
             "iteration and stop, and resume from it next run (signal again to stop at once)",
    "cluster": "stopping: no new jobs start; running cluster tasks stop within about a second, "
               "send back a checkpoint and resume from it next run (signal again to stop at once)",
}


class Terminated(BaseException):
    """SIGTERM or SIGHUP outside the render's own handling: unwinds like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def signal_of(stopped: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (SIGINT) or a Terminated."""
    return stopped.signum if isinstance(stopped, Terminated) else signal.SIGINT


@contextmanager
def stop_on_signals(stop: StopSignal, *, cluster: bool = False):
    """First SIGINT/SIGTERM/SIGHUP: stop gracefully. Second: stop now."""
    first_at: list[float] = []

    def handler(signum, frame):
        now = time.monotonic()
        if first_at and stop.level == 1 and now - first_at[0] < SAME_SIGNAL_SECONDS:
            # One signal delivered twice, not a second request: GNU `timeout`
            # (as in a cron line `timeout 8h nst render …`) signals the process
            # and then its whole group, and both can reach this handler. Taken
            # as "stop now", the running jobs would lose their checkpoints.
            return
        first_at.append(now)
        stop.request(signum)
        word = "again: stopping now" if stop.level > 1 else _STOPPING["cluster" if cluster else "local"]
        log.warning("received %s, %s", signal.Signals(signum).name, word)

    previous = {sig: signal.signal(sig, handler) for sig in EXIT_SIGNAL}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
