"""A tab left open on a run's contact sheet follows the run by reloading, and
stops once the run has gone quiet. The run rewrites the page at least every
HEARTBEAT_SECONDS while it lives, so a page that says a run is rendering and is
far older than that was left by a killed run (a power cut, kill -9): it says
so instead of reloading all day. Opened in headless Chromium, whose clock decides."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from browser_helpers import run_chromium
from test_reporter import Page, make_gallery, record

from pipeline.reporter import (
    HEARTBEAT_SECONDS,
    RELOAD_SECONDS,
    STALE_AFTER_SECONDS,
    write_contact_sheet,
)

pytestmark = pytest.mark.browser

# Put before the page's own script: the reloads it asks for are noted, not made.
NOTE_RELOADS = "window.reloads = []; window.setTimeout = (call, ms) => { window.reloads.push(ms); return 0; };"
MEASURE = r"""
const shown = selector => {
  const element = document.querySelector(selector);
  return element ? getComputedStyle(element).display !== "none" : null;
};
const text = selector => document.querySelector(selector)?.innerText.toLowerCase().replace(/\s+/g, " ") ?? null;
document.body.dataset.measured = JSON.stringify({run: document.documentElement.dataset.run ?? null,
  reloads: window.reloads, live_note: shown(".top .sub.live"), gone_note: shown(".top .sub.gone"),
  card: text('.card[data-status="rendering"] .state'), count: text(".stats .count-rendering")});
"""


def _opened(sheet, profile) -> dict:
    page = sheet.with_name("opened.html")
    html = sheet.read_text(encoding="utf-8")
    page.write_text(html.replace("<head>", f"<head><script>{NOTE_RELOADS}</script>", 1)
                    .replace("</body>", f"<script>{MEASURE}</script></body>"), encoding="utf-8")
    (body,) = Page(run_chromium(profile, "--dump-dom", page.as_uri()).stdout).with_attr("data-measured")
    return json.loads(body["data-measured"])


def _sheet(tmp_path, *, rendering: bool, minutes_old: float):
    output_dir, jobs, results = make_gallery(tmp_path)
    pending = next(job for job in jobs if job.job_id not in results)
    if rendering:
        results[pending.job_id] = {**record(pending, "rendering"), "device": "cuda:0"}
    written_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_old)
    return write_contact_sheet(output_dir, jobs, results, title="Night", written_at=written_at), written_at


LIVE = {"run": "live", "reloads": [RELOAD_SECONDS * 1000], "live_note": True, "gone_note": False,
        "card": "rendering on cuda:0", "count": "1 rendering"}
# The job the killed run was rendering stopped with it: its card and the count say so.
GONE = {"run": "gone", "reloads": [], "live_note": False, "gone_note": True,
        "card": "stopped on cuda:0 with its run; renders next run", "count": "1 stopped"}
QUIET_MINUTES = STALE_AFTER_SECONDS / 60


@pytest.mark.parametrize(("minutes_old", "expected"), [
    (0, LIVE),
    (QUIET_MINUTES - 2, LIVE),  # a few heartbeats missed: a busy machine, a clock a little off
    (QUIET_MINUTES + 2, GONE),
    (16 * 60, GONE),  # opened the next afternoon
])
def test_an_open_tab_follows_the_run_and_stops_once_the_run_has_gone_quiet(tmp_path, minutes_old, expected):
    assert STALE_AFTER_SECONDS >= 3 * HEARTBEAT_SECONDS + RELOAD_SECONDS  # the margin the page relies on
    sheet, written_at = _sheet(tmp_path, rendering=True, minutes_old=minutes_old)
    assert _opened(sheet, tmp_path / "profile") == expected
    html = sheet.read_text(encoding="utf-8")
    assert f"No word from the run since {written_at:%Y-%m-%d %H:%M} UTC" in html
    assert "<code>nst render</code> again finishes what is left" in html


def test_a_page_written_after_the_run_ended_neither_reloads_nor_warns(tmp_path):
    sheet, _ = _sheet(tmp_path, rendering=False, minutes_old=16 * 60)
    assert _opened(sheet, tmp_path / "profile") == {"run": None, "reloads": [], "live_note": None,
                                                    "gone_note": None, "card": None, "count": None}
