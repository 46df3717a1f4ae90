"""`--cluster` pointed at something that is not a Dask scheduler: a web server,
a dashboard's port that never answers, a worker. Dask's own client read a web
server's "HTTP/1.1 400" as a frame length (a MemoryError and a 190-line
traceback, exit 1) and waited on a silent port forever, deaf to Ctrl-C."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from dask_helpers import FREE_DASHBOARD_PORT, Collect, fake_jobs
from process_helpers import run, wait_for, write_manifest

from pipeline import cluster_connect
from pipeline.cluster import DaskExecutor
from pipeline.errors import PipelineError
from pipeline.events import StopSignal
from pipeline.jobs import WorkerOptions


@pytest.fixture
def web_server():
    """A port that answers anything with an HTTP 400, as a proxy or web server would."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()


@pytest.fixture
def silent_port():
    """A port that takes connections (the kernel completes them) and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_web_server_at_the_address_is_one_line_exit_2_and_recorded(gallery_dir, web_server):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["night_cafe"], settings={"size": 32, "iterations": 2})
    started = time.monotonic()
    code, printed = run(manifest, "--cluster", web_server)
    assert code == 2, printed
    assert time.monotonic() - started < 60, printed
    lines = [line for line in printed.splitlines() if " INFO " not in line]
    assert len(lines) == 1 and f"ERROR --cluster: {web_server} did not answer as a Dask scheduler (" in lines[0], printed
    # The folder says what happened: not the null exit code of a run killed outright.
    out = gallery_dir.parent / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 2 and summary["finished_at"] and summary["pending"] == 1, summary
    assert "did not answer as a Dask scheduler" in (out / "nst.log").read_text()


def test_an_address_from_the_manifest_is_named_by_its_line_not_as_the_flag(gallery_dir, web_server):
    manifest = write_manifest(gallery_dir.parent, ["chelsea"], ["night_cafe"], settings={"size": 32, "iterations": 2},
                              run={"cluster": web_server})
    code, printed = run(manifest)
    assert code == 2, printed
    assert re.search(rf"ERROR gallery\.yaml:\d+: run\.cluster: {re.escape(web_server)} did not answer as a Dask "
                     "scheduler", printed), printed
    assert "--cluster" not in printed, printed


def test_a_port_that_never_answers_is_given_up_on(silent_port, monkeypatch):
    monkeypatch.setattr(cluster_connect, "SCHEDULER_TIMEOUT", 1.0)
    monkeypatch.setattr(cluster_connect, "ANSWER_MARGIN", 1.0)
    started = time.monotonic()
    with pytest.raises(PipelineError) as caught:
        cluster_connect.connect(silent_port, StopSignal())
    assert time.monotonic() - started < 10
    assert str(caught.value) == (f"--cluster: {silent_port} took the connection but did not answer as a Dask "
                                 "scheduler in 2 s (is it the scheduler's port, 8786 unless changed, and not "
                                 "its dashboard's?)")


def test_a_stop_while_connecting_ends_the_wait_at_once(silent_port):
    stop = StopSignal()
    threading.Timer(0.5, stop.request).start()
    started = time.monotonic()
    assert cluster_connect.connect(silent_port, stop) == (None, False)
    assert time.monotonic() - started < 3


def test_a_workers_address_is_not_the_schedulers():
    from distributed import LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=FREE_DASHBOARD_PORT) as cluster:
        worker = next(iter(cluster.workers.values())).address
        with pytest.raises(PipelineError) as caught:
            cluster_connect.connect(worker, StopSignal())
        assert str(caught.value) == (f"--cluster: {worker} is a Dask Worker, not the scheduler: give the "
                                     "address the workers were started with")
        client, owned = cluster_connect.connect(cluster.scheduler_address, StopSignal())
        try:
            assert owned and client.scheduler.address == cluster.scheduler_address
        finally:
            client.close()


def test_a_scheduler_killed_outright_while_the_run_waits_is_one_line_of_its_own(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cluster_connect, "SCHEDULER_TIMEOUT", 2.0)  # the client's wait to reconnect
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port),
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dask_records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = dask_records.append
    logging.getLogger("distributed").addHandler(handler)
    try:
        wait_for(lambda: _answers(port), what="the scheduler", process=scheduler)
        threading.Timer(2.0, scheduler.kill).start()  # a machine gone: no goodbye to the client
        listener = Collect()
        with caplog.at_level("WARNING", logger="nst"):
            DaskExecutor(address, WorkerOptions(str(tmp_path))).run(fake_jobs(tmp_path, 2), listener, StopSignal())
    finally:
        logging.getLogger("distributed").removeHandler(handler)
        scheduler.kill()
        scheduler.wait()
    assert {r["status"] for r in listener.records.values()} == {"interrupted"}
    (said,) = [r.getMessage() for r in caplog.records if r.name == "nst" and r.levelno >= logging.ERROR]
    # In the README's words, not Dask's ("ConnectionPool closing.").
    assert re.fullmatch(r"the Dask scheduler at \S+ stopped answering \(the connection to it closed\); "
                        r"2 jobs left for next run", said), said
    # Dask's client printed "Failed to reconnect to scheduler after 2.00 seconds" on stderr as well.
    assert not [r for r in dask_records if r.name == "distributed.client" and r.levelno >= logging.ERROR], \
        [r.getMessage() for r in dask_records]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True



def test_test_clusters_take_any_free_http_port_so_two_at_once_do_not_warn():
    """Two xdist workers each open a LocalCluster; with the scheduler's fixed
    default port 8787 the second one warned "Port 8787 is already in use"."""
    import contextlib
    import warnings

    from distributed import LocalCluster

    with socket.socket() as held:
        with contextlib.suppress(OSError):  # if someone else holds 8787, that serves as well
            held.bind(("127.0.0.1", 8787))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with LocalCluster(processes=False, n_workers=0, dashboard_address=FREE_DASHBOARD_PORT):
                pass
    assert not [w for w in caught if "already in use" in str(w.message)]
