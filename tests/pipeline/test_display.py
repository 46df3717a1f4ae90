"""The terminal display: rich bars (overall with ETA, one per worker) in a
terminal, plain timestamped lines without one."""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import time

from rich.console import Console

from nst_engine.settings import RenderSettings
from pipeline.display import TERMINAL, ProgressDisplay, setup_logging
from pipeline.events import StopSignal
from pipeline.jobs import RenderJob
from pipeline.stop_signals import SAME_SIGNAL_SECONDS, stop_on_signals


def _job(job_id: str, iterations: int = 20) -> RenderJob:
    return RenderJob(
        job_id=job_id, content="/x/cat.jpg", styles=("/x/starry.jpg",),
        settings=RenderSettings(size=64, iterations=iterations),
        output_name=f"cat--starry-{job_id}.png", content_label="cat", style_label="starry",
    )


def _drive(display: ProgressDisplay, jobs: list[RenderJob]) -> None:
    display.on_worker(0, "cpu", {"device_name": "x86_64", "pid": 1})
    display.on_start(0, [jobs[0]])
    display.on_progress(0, {"job_ids": [jobs[0].job_id], "done": 10, "total": 20, "losses": [1.5]})
    display.on_result(jobs[0], {"status": "done", "stats": {"seconds": 1.0, "losses": {"total": 1.2}}})
    display.on_start(0, [jobs[1]])
    display.on_result(jobs[1], {"status": "failed", "error": "cat.jpg is empty (0 bytes)"})


def test_terminal_shows_overall_bar_with_eta_and_a_bar_per_worker(tmp_path):
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120, color_system=None)
    setup_logging(tmp_path / "nst.log", console=console, quiet=False)
    jobs = [_job("aaaaaaaaaaaa"), _job("bbbbbbbbbbbb")]
    with ProgressDisplay(jobs, live=True, console=console, title="my_gallery") as display:
        _drive(display, jobs)
        overall = display._progress.tasks[display._overall]
        # Both jobs finished (one failed): the overall bar is full, 40 of 40 iterations.
        assert (overall.completed, overall.total) == (40, 40)
    screen = stream.getvalue()
    assert "my_gallery" in screen and "worker 0" in screen
    assert re.search(r"\d+/40 it", screen)  # iterations done of all jobs' (jobs would read as a miscount)
    assert re.search(r"\d:\d\d:\d\d", screen)  # elapsed / remaining time columns
    log_text = (tmp_path / "nst.log").read_text()
    assert "done cat--starry-aaaaaaaaaaaa" in log_text and "failed cat--starry-bbbbbbbbbbbb" in log_text


def test_without_a_terminal_lines_are_plain_and_timestamped(tmp_path, capsys):
    setup_logging(tmp_path / "nst.log", console=None, quiet=False)
    jobs = [_job("aaaaaaaaaaaa"), _job("bbbbbbbbbbbb")]
    with ProgressDisplay(jobs, live=False) as display:
        _drive(display, jobs)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line) for line in lines)
    assert not any("\x1b[" in line or "\r" in line for line in lines)  # no terminal codes
    assert any("cat.jpg is empty (0 bytes)" in line for line in lines)
    logging.getLogger("nst").handlers.clear()


def test_progress_lines_mark_every_50_iterations_even_when_events_skip_them(tmp_path):
    # A Dask task sends its progress once a second, at whatever iteration it has reached.
    setup_logging(tmp_path / "nst.log", console=None, quiet=True)
    job = _job("aaaaaaaaaaaa", iterations=160)
    with ProgressDisplay([job], live=False) as display:
        display.on_start(0, [job])
        for done in (10, 20, 40, 60, 95, 120, 160):
            display.on_progress(0, {"job_ids": [job.job_id], "done": done, "total": 160, "losses": [1.0]})
    logged = re.findall(r"iteration (\d+)/160", (tmp_path / "nst.log").read_text())
    # Not 160: the last step's loss is the "done" line's, after the step (a
    # progress line there would show the loss before it, a second figure).
    assert logged == ["60", "120"]
    logging.getLogger("nst").handlers.clear()


def test_a_log_file_on_a_full_disk_costs_one_line_not_a_traceback_per_message(tmp_path, capsys):
    from file_limits import file_size_limit

    setup_logging(tmp_path / "nst.log", console=Console(file=io.StringIO()), quiet=False)
    log = logging.getLogger("nst")
    with file_size_limit(300):
        for index in range(20):
            log.info("message %d, long enough to fill the allowance %s", index, "x" * 40)
    for handler in log.handlers:
        handler.close()
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"nst: could not write {tmp_path / 'nst.log'}: "), errors
    assert "File too large" in errors[0]


def _terminal(quiet: bool) -> io.StringIO:
    stream = io.StringIO()
    setup_logging(None, console=Console(file=stream, width=200, color_system=None), quiet=quiet)
    return stream


def test_a_terminal_gets_milestones_warnings_and_errors_but_not_per_job_chatter():
    stream = _terminal(quiet=False)
    log = logging.getLogger("nst")
    log.info("worker 0 starts cat--starry")
    log.info("finished: 1 rendered", extra=TERMINAL)
    log.warning("interrupted cat--starry")
    log.error("failed cat--dog: cat.jpg is empty")
    lines = stream.getvalue().splitlines()
    assert [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in lines] == [
        "finished: 1 rendered", "warning: interrupted cat--starry", "error: failed cat--dog: cat.jpg is empty"]
    logging.getLogger("nst").handlers.clear()


def test_quiet_at_a_terminal_keeps_warnings_and_errors_only():
    stream = _terminal(quiet=True)
    log = logging.getLogger("nst")
    log.info("finished: 1 rendered", extra=TERMINAL)
    log.error("failed cat--dog: cat.jpg is empty")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" error: failed cat--dog: cat.jpg is empty")
    logging.getLogger("nst").handlers.clear()


def test_a_first_signal_says_what_happens_to_running_jobs():
    for cluster, expected in ((False, "running jobs save a checkpoint at their next iteration and stop"),
                              (True, "running cluster tasks stop within about a second, send back a checkpoint")):
        stream = _terminal(quiet=False)
        with stop_on_signals(StopSignal(), cluster=cluster):
            os.kill(os.getpid(), signal.SIGINT)
        text = stream.getvalue()
        assert "warning: received SIGINT, stopping: no new jobs start; " in text, text
        assert expected in text and "(signal again to stop at once)" in text, text
    logging.getLogger("nst").handlers.clear()


def test_one_signal_delivered_twice_is_one_request_and_a_later_one_stops_at_once():
    # GNU timeout signals nst and then its process group: two copies, microseconds apart.
    stop = StopSignal()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.level == 1
        time.sleep(SAME_SIGNAL_SECONDS + 0.1)
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.level == 2 and stop.signal_number == signal.SIGTERM
    logging.getLogger("nst").handlers.clear()


def test_each_job_on_a_worker_bar_starts_its_own_clock(tmp_path):
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    setup_logging(None, console=console, quiet=True)
    jobs = [_job("aaaaaaaaaaaa"), _job("bbbbbbbbbbbb")]
    with ProgressDisplay(jobs, live=True, console=console) as display:
        display.on_worker(0, "cpu", {"pid": 1})
        display.on_start(0, [jobs[0]])
        bar = display._progress.tasks[display._slots[0]]
        bar.start_time -= 300  # the first job has run for five minutes
        display.on_progress(0, {"job_ids": [jobs[0].job_id], "done": 20, "total": 20})
        display.on_start(0, [jobs[1]])
        bar = display._progress.tasks[display._slots[0]]
        assert bar.elapsed < 60 and bar.completed == 0 and bar.time_remaining is None
    logging.getLogger("nst").handlers.clear()


def test_long_names_in_a_narrow_terminal_leave_counts_and_times_visible(tmp_path):
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=80, color_system=None)
    setup_logging(None, console=console, quiet=True)
    long_name = "a_very_long_descriptive_output_name_for_マチュピチュ_rendered_in_the_style_of_Sternennacht"
    job = RenderJob(job_id="aaaaaaaaaaaa", content="/x/cat.jpg", styles=("/x/starry.jpg",),
                    settings=RenderSettings(size=64, iterations=20), output_name=f"{long_name}.png",
                    content_label="cat", style_label="starry")
    with ProgressDisplay([job], live=True, console=console, title="a_gallery_with_a_long_name_" * 3) as display:
        display.on_worker(0, "cpu", {"pid": 1})
        display.on_start(0, [job])
        display.on_progress(0, {"job_ids": [job.job_id], "done": 7, "total": 20})
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    final = [line.rstrip() for line in screen.splitlines() if line.strip()][-2:]
    assert len(final) == 2, stream.getvalue()
    overall, worker = final
    assert re.search(r" 7/20 it +\d:\d\d:\d\d +(\d:\d\d:\d\d|-:--:--)$", overall), overall
    assert re.search(r" 7/20 it +\d:\d\d:\d\d +(\d:\d\d:\d\d|-:--:--)$", worker), worker
    assert "…" in worker and "worker 0: a_very_long" in worker
    logging.getLogger("nst").handlers.clear()


def test_the_log_names_a_job_by_its_folder_too(tmp_path):
    setup_logging(tmp_path / "nst.log", console=None, quiet=True)
    job = RenderJob(job_id="aaaaaaaaaaaa", content="/x/cat.jpg", styles=("/x/starry.jpg",),
                    settings=RenderSettings(size=64, iterations=20), output_name="starry/cat-aaaaaaaaaaaa.png",
                    content_label="cat", style_label="starry")
    with ProgressDisplay([job], live=False) as display:
        display.on_start(0, [job])
        display.on_result(job, {"status": "failed", "error": "boom"})
    text = (tmp_path / "nst.log").read_text()
    assert "worker 0 starts starry/cat-aaaaaaaaaaaa" in text and "failed starry/cat-aaaaaaaaaaaa: boom" in text
    logging.getLogger("nst").handlers.clear()


class _HungUpTerminal(io.StringIO):
    """A terminal after its SSH session closed: every write fails with EIO."""

    def __init__(self) -> None:
        super().__init__()
        self.hung_up = False

    def write(self, text: str) -> int:
        if self.hung_up:
            raise OSError(5, "Input/output error")
        return super().write(text)


def test_bars_on_a_terminal_that_hung_up_do_not_stop_the_run_ending(tmp_path):
    terminal = _HungUpTerminal()
    console = Console(file=terminal, force_terminal=True, width=100, color_system=None)
    setup_logging(None, console=console, quiet=True)
    jobs = [_job("aaaaaaaaaaaa")]
    with ProgressDisplay(jobs, live=True, console=console) as display:
        display.on_worker(0, "cpu", {"pid": 1})
        display.on_start(0, [jobs[0]])
        terminal.hung_up = True
    # Leaving the block raised nothing: the run goes on to write its results.
    logging.getLogger("nst").handlers.clear()


def test_a_gallery_interrupted_at_once_warns_ten_times_then_once(tmp_path, capsys):
    # A lost Dask cluster interrupts every job left; cron (-q) mails the warnings.
    setup_logging(tmp_path / "nst.log", console=None, quiet=True)
    jobs = [_job(f"{index:012d}") for index in range(25)]
    with ProgressDisplay(jobs, live=False) as display:
        for job in jobs:
            display.on_result(job, {"status": "interrupted", "error": "interrupted: the cluster went away"})
    mailed = capsys.readouterr().err.splitlines()
    assert len(mailed) == 11 and mailed[-1].endswith("more jobs interrupted: nst.log names each one; "
                                                    "they all render next run"), mailed
    assert (tmp_path / "nst.log").read_text().count("interrupted cat--starry-") == 25
    logging.getLogger("nst").handlers.clear()
