"""The contact sheet follows the reader's colour scheme: dark by default and
under a dark system setting, light under a light one. Either way every piece
of text keeps WCAG AA contrast (4.5:1) on what is behind it, as headless
Chromium computes both."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from test_contact_sheet_layout import _measured
from test_reporter import make_gallery, record

from pipeline.reporter import write_contact_sheet

pytestmark = pytest.mark.browser

# Each text element's colour and the first opaque background behind it.
PAIRS = """
const opaque = colour => !/rgba\\(.*, 0\\)$/.test(colour) && colour !== "transparent";
function behind(element) {
  for (let at = element; at; at = at.parentElement) {
    const background = getComputedStyle(at).backgroundColor;
    if (opaque(background)) return background;
  }
  return getComputedStyle(document.documentElement).backgroundColor;
}
const texts = ".top h1, .top .sub, .stats li, th.corner span, .name, .noimg, .tag, details summary, " +
  ".state strong, .state span, .info .what, .info dt, .info dd, .info a, footer, th.variant > span";
const pairs = [...document.querySelectorAll(texts)].filter(e => e.textContent.trim()).map(element => [
  element.tagName.toLowerCase() + "." + [...element.classList, ...element.closest(".card")?.classList ?? []].join("."),
  getComputedStyle(element).color, behind(element)]);
document.body.dataset.measured = JSON.stringify({pairs, page: getComputedStyle(document.body).backgroundColor});
"""

SCHEMES = {"dark": "--force-dark-mode", "light": "--blink-settings=preferredColorScheme=1"}


def _luminance(css: str) -> float:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+(?:\.\d+)?", css)[:3])
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture(scope="module")
def every_status_sheet(tmp_path_factory):
    root = tmp_path_factory.mktemp("theme")
    output_dir, jobs, results = make_gallery(root)
    pending = next(job for job in jobs if job.job_id not in results)  # a pending job has no record
    results[pending.job_id] = {**record(pending, "rendering"), "device": "cuda:0"}
    # Written yesterday by a run that was killed: the page shows its warning too.
    yesterday = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    return write_contact_sheet(output_dir, jobs, results, title="Theme", written_at=yesterday)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_sheet_follows_the_readers_colour_scheme_and_keeps_its_text_readable(every_status_sheet, tmp_path,
                                                                                  scheme):
    measured = _measured(every_status_sheet, tmp_path / "profile", PAIRS, SCHEMES[scheme], "--window-size=1400,1000")
    page = _luminance(measured["page"])
    assert (page < 0.05) if scheme == "dark" else (page > 0.8), measured["page"]
    kinds = {kind for kind, _, _ in measured["pairs"]}
    for expected in ("div.sub.gone", "strong.failed.card", "strong.interrupted.card", "strong.rendering.card",
                     "span.error.failed.card"):
        assert any(kind.startswith(expected.split(".")[0]) and set(expected.split(".")[1:]) <= set(kind.split("."))
                   for kind in kinds), (expected, sorted(kinds))
    faint = {(kind, colour, behind) for kind, colour, behind in measured["pairs"] if _contrast(colour, behind) < 4.5}
    assert not faint, sorted(faint)
