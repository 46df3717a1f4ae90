"""Reaching the Dask scheduler at the start of a cluster run, and waiting for
its first worker: the two waits before any task is sent."""

from __future__ import annotations

import logging
import threading
import time

from .errors import PipelineError
from .events import StopSignal

log = logging.getLogger("nst")

# How long the client waits to connect to the scheduler: at the start, and
# again after losing it mid-run, before the run gives up on it.
SCHEDULER_TIMEOUT = 20.0
# Past the client's own timeout: something at the address took the connection
# but never spoke Dask (a dashboard's port, a web server), and Dask's client
# waited on it forever, deaf to Ctrl-C, holding the output folder's lock.
ANSWER_MARGIN = 10.0

# How long a run waits for a cluster with no workers (they may still be
# starting, or be autoscaled from zero) before it gives up on the night.
NO_WORKER_PATIENCE = 300.0


def connect(cluster, stop: StopSignal, source: str = "--cluster"):
    """(client, owned): a Client for the address, or the Client handed in
    (notebooks). None for the client when a stop came while connecting.
    Anything else that goes wrong is one line, as a PipelineError, named by
    `source`: the flag, or the manifest's `run.cluster` with its line."""
    if not isinstance(cluster, str):
        return cluster, False
    _quiet_reconnect_errors()
    outcome: dict = {}

    def attempt() -> None:
        try:
            outcome["client"] = _client(cluster, source)
        except Exception as error:  # noqa: BLE001 - raised again on the run's thread, which owns it
            outcome["error"] = error

    # On a thread, so the run's own thread keeps reading signals and the clock.
    thread = threading.Thread(target=attempt, name="nst-dask-connect", daemon=True)
    thread.start()
    # The question, then the client, each with its time, and a margin: a backstop.
    patience = 2 * (SCHEDULER_TIMEOUT + ANSWER_MARGIN)
    deadline = time.monotonic() + patience
    while thread.is_alive():
        thread.join(0.2)
        if stop.level:
            return None, False
        if thread.is_alive() and time.monotonic() > deadline:
            raise PipelineError(f"{source}: the Dask scheduler at {cluster} answered, but its client "
                                f"had not connected after {patience:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["client"], True


def _quiet_reconnect_errors() -> None:
    """Dask's client logs "Failed to reconnect to scheduler" on stderr when it
    gives up on a lost scheduler; the run then says so in its own line (with
    the jobs left), in nst.log too. Once per process: a filter is kept once."""
    client_log = logging.getLogger("distributed.client")
    if _drop_reconnect_errors not in client_log.filters:
        client_log.addFilter(_drop_reconnect_errors)


def _drop_reconnect_errors(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Failed to reconnect to scheduler")


def _client(cluster: str, source: str):
    """Ask what answers at the address before a Client is made: Dask's Client,
    pointed at a dashboard's port or a web server, waited forever or read
    "HTTP/1.1 400" as a frame length (a MemoryError, a traceback), and a
    half-built one spends another 40 s closing itself."""
    import asyncio

    from dask.distributed import Client

    try:
        kind = asyncio.run(_identify(cluster))
    except TimeoutError:  # before OSError: in Python 3.11 it is one
        raise PipelineError(f"{source}: {cluster} took the connection but did not answer as a Dask "
                            f"scheduler in {SCHEDULER_TIMEOUT + ANSWER_MARGIN:.0f} s (is it the scheduler's port, 8786 unless changed, "
                            "and not its dashboard's?)") from None
    except OSError as error:
        raise PipelineError(f"{source}: cannot reach the Dask scheduler at {cluster}: {error}") from None
    except Exception as error:  # noqa: BLE001 - whatever the bytes it sent made of Dask's reader
        raise PipelineError(f"{source}: {cluster} did not answer as a Dask scheduler ({type(error).__name__} "
                            "reading its reply; is it the scheduler's address?)") from None
    if kind != "Scheduler":
        raise PipelineError(f"{source}: {cluster} is a Dask {kind}, not the scheduler: give the address "
                            "the workers were started with")
    try:
        return Client(cluster, timeout=SCHEDULER_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise PipelineError(f"{source}: cannot reach the Dask scheduler at {cluster}: {error}") from None


async def _identify(cluster: str) -> str:
    """What Dask server answers at the address ("Scheduler", "Worker", ...).
    Connecting has the client's timeout (Dask retries a refused connection
    until then, and raises an OSError); an answer has ANSWER_MARGIN more."""
    import asyncio

    from distributed.comm import connect as open_comm
    from distributed.core import send_recv

    async def ask() -> object:
        # Dask's connect reads the other side's handshake with no timeout of its own.
        comm = await open_comm(cluster, timeout=SCHEDULER_TIMEOUT)
        try:
            return await send_recv(comm, op="identity")
        finally:
            comm.abort()

    identity = await asyncio.wait_for(ask(), SCHEDULER_TIMEOUT + ANSWER_MARGIN)
    return str(identity.get("type", "server")) if isinstance(identity, dict) else "server"


def wait_for_a_worker(client, stop: StopSignal) -> bool:
    """True once a worker has joined; False if a stop came first. Raises a
    one-line PipelineError after NO_WORKER_PATIENCE seconds without one."""
    address = client.scheduler.address
    log.warning("the Dask cluster at %s has no workers yet: waiting up to %.0f s for one to join",
                address, NO_WORKER_PATIENCE)
    deadline = time.monotonic() + NO_WORKER_PATIENCE
    while stop.level == 0:
        if client.nthreads():  # asks the scheduler, unlike scheduler_info()'s cached copy
            return True
        if time.monotonic() > deadline:
            raise PipelineError(f"the Dask cluster at {address} had no workers for "
                                f"{NO_WORKER_PATIENCE:.0f} s; nothing was rendered")
        time.sleep(0.5)
    return False
