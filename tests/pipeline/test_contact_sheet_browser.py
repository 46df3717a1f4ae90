"""The contact sheet in a real headless Chromium: the DOM it builds, and a screenshot.

The screenshot lands in test-artifacts/contact-sheet.png (git-ignored) for a
person to look at; the assertions cover what a parser alone cannot: that the
browser, not just our own parse, sees the hostile file name as text, and how
the browser lays out a failed card's reason.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from browser_helpers import run_chromium as _run_chromium
from PIL import Image
from test_reporter import STATUSES, WRITTEN_AT, XSS_NAME, Page, make_gallery, make_job, record

from nst_engine.settings import RenderSettings
from pipeline.reporter import write_contact_sheet

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "manifests" / "images"
SCREENSHOT = REPO / "test-artifacts" / "contact-sheet.png"
WINDOW = (1400, 1000)


def _sample_sources(folder: Path):
    """Real photos and paintings when the repo has them: a screenshot worth looking at."""
    pick = [SAMPLES / "content" / "chelsea.jpg", SAMPLES / "content" / "neuschwanstein.jpg"]
    pick += [SAMPLES / "style" / "starry_night.jpg", SAMPLES / "style" / "night_cafe.jpg"]
    if not all(p.is_file() for p in pick):
        return None, None
    folder.mkdir()
    names = ["chelsea.jpg", f"{XSS_NAME}.jpg", "starry_night.jpg", "night_cafe.jpg"]
    copies = [Path(shutil.copyfile(p, folder / n)) for p, n in zip(pick, names, strict=True)]
    return copies[:2], copies[2:]


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sheet")
    contents, styles = _sample_sources(root / "samples")
    output_dir, jobs, results = make_gallery(root, contents, styles)
    return write_contact_sheet(output_dir, jobs, results, title="Overnight gallery", written_at=WRITTEN_AT)


def test_browser_dom_has_every_cell_and_no_injected_element(sheet, tmp_path):
    dom = _run_chromium(tmp_path / "profile", "--dump-dom", sheet.as_uri()).stdout
    page = Page(dom)
    statuses = Counter(a["data-status"] for a in page.with_attr("data-status"))
    assert statuses == Counter(STATUSES)
    assert not page.with_attr("onerror")
    assert XSS_NAME in "".join(page.text)
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) == 4 + 4  # done thumbnails + source headers


def test_browser_screenshot_for_a_person(sheet, tmp_path):
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    _run_chromium(
        tmp_path / "profile",
        f"--screenshot={SCREENSHOT}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
        sheet.as_uri(),
    )
    with Image.open(SCREENSHOT) as shot:
        assert shot.size == WINDOW
        # Not a blank page: the dark background plus thumbnails give many colours.
        assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 1000


# Failed cards in rows from 3:2 to 2:1: a wide content's short frame leaves its
# reason a height that is seldom a whole number of lines.
WIDTHS = (150, 160, 170, 178, 190, 200)  # px, over a height of 100
LONG_REASON = ("holiday_2024_beach_panorama_from_the_camera_roll.jpg is truncated or corrupt "
               "(image file is truncated (42 bytes not processed)) and could not be read at all")
# Run in a copy of the sheet (which itself has no script): for each failed card's
# reason, how much of each of its lines shows, inside both its own box and the
# frame that clips it, against the line's height.
MEASURE_LINES = """<script>
const cards = [];
for (const error of document.querySelectorAll(".card.failed .error")) {
  const box = error.getBoundingClientRect(), frame = error.closest(".frame").getBoundingClientRect();
  const top = Math.max(box.top, frame.top), bottom = Math.min(box.bottom, frame.bottom);
  const text = document.createRange();
  text.selectNodeContents(error);
  const lines = [...text.getClientRects()].map(
    line => [Math.min(line.bottom, bottom) - Math.max(line.top, top), line.height]);
  cards.push({clamped: error.scrollHeight > error.clientHeight, lines});
}
document.body.dataset.measured = JSON.stringify(cards);
</script>"""


@pytest.fixture(scope="module")
def failed_sheet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("failed")
    style = root / "style.png"
    Image.new("RGB", (40, 40), (120, 90, 135)).save(style)
    jobs, results = [], {}
    for width in WIDTHS:
        content = root / f"wide{width}.png"
        Image.new("RGB", (width, 100), (40, 90, 200)).save(content)
        job = make_job(content, style, "", RenderSettings())
        jobs.append(job)
        results[job.job_id] = {**record(job, "failed"), "error": LONG_REASON}
    return write_contact_sheet(root / "out", jobs, results, title="Failures")


@pytest.mark.parametrize("scale", [1, 2])
def test_a_clamped_reason_shows_whole_lines_only(failed_sheet, tmp_path, scale):
    # The clamp's ellipsis ends the last line shown; the top of a further line
    # peeking out under it reads as a rendering fault.
    measuring = failed_sheet.with_name(f"measure-{scale}.html")
    measuring.write_text(failed_sheet.read_text(encoding="utf-8").replace("</body>", MEASURE_LINES + "</body>"),
                         encoding="utf-8")
    dom = _run_chromium(tmp_path / "profile", f"--force-device-scale-factor={scale}",
                        f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom", measuring.as_uri()).stdout
    (body,) = Page(dom).with_attr("data-measured")
    cards = json.loads(body["data-measured"])
    assert len(cards) == len(WIDTHS) and all(card["clamped"] for card in cards)
    slack = 0.1  # px: layout rounds positions to 1/64 px
    faults = []
    for width, card in zip(WIDTHS, cards, strict=True):
        whole = [shown for shown, height in card["lines"] if shown >= height - slack]
        partly = [round(shown, 2) for shown, height in card["lines"] if slack < shown < height - slack]
        if not whole or partly:
            faults.append(f"{width}x100 row: {len(whole)} whole lines, then {partly} px of a line")
    assert not faults


def test_a_failed_card_in_a_wide_row_grows_to_show_its_reason(tmp_path):
    # A 2:1 frame left room for the file's name only; the reason is what the card is for.
    style = tmp_path / "style.png"
    content = tmp_path / "pano.png"
    Image.new("RGB", (40, 40), (120, 90, 135)).save(style)
    Image.new("RGB", (200, 100), (40, 90, 200)).save(content)
    job = make_job(content, style, "", RenderSettings())
    reason = "pano.png (scaled to 64 px) is 64×1 px but must be at least 16×16 px"
    sheet = write_contact_sheet(tmp_path / "out", [job], {job.job_id: {**record(job, "failed"), "error": reason}},
                                title="Wide")
    measuring = sheet.with_name("measure.html")
    measuring.write_text(sheet.read_text(encoding="utf-8").replace("</body>", MEASURE_LINES + "</body>"),
                         encoding="utf-8")
    for window in (WINDOW, (390, 844)):  # a desktop and a phone
        dom = _run_chromium(tmp_path / "profile", f"--window-size={window[0]},{window[1]}", "--dump-dom",
                            measuring.as_uri()).stdout
        (body,) = Page(dom).with_attr("data-measured")
        (card,) = json.loads(body["data-measured"])
        assert not card["clamped"], (window, card)
        assert all(shown >= height - 0.1 for shown, height in card["lines"]), (window, card)


MEASURE_CHIPS = """<script>
const cards = [...document.querySelectorAll(".card")].map(card => card.getBoundingClientRect().width);
const chips = [...document.querySelectorAll("th.variant")].map(th => th.getBoundingClientRect().width);
const spill = [...document.querySelectorAll("th.variant > span")].map(chip => chip.scrollWidth - chip.clientWidth);
const lines = [...document.querySelectorAll("th.variant > span")].map(
  chip => new Set([...chip.querySelectorAll(".setting")].map(line => line.getBoundingClientRect().top)).size);
document.body.dataset.measured = JSON.stringify({card: Math.max(...cards), chips, spill, lines});
</script>"""


def test_a_sweep_over_two_settings_keeps_its_columns_as_narrow_as_the_cards(tmp_path):
    # "style_weight=10,preserve_color=false" in one line is wider than a card;
    # the chip wraps after its comma instead of widening the column.
    style = tmp_path / "style.png"
    content = tmp_path / "content.png"
    Image.new("RGB", (40, 40), (120, 90, 135)).save(style)
    Image.new("RGB", (60, 40), (40, 90, 200)).save(content)
    jobs, results = [], {}
    for weight in (2, 10):
        for keep in (True, False):
            variant = f"style_weight={weight},preserve_color={str(keep).lower()}"
            job = make_job(content, style, variant, RenderSettings().with_overrides(
                style_weight=float(weight), preserve_color=keep))
            jobs.append(job)
            results[job.job_id] = record(job, "failed")
    sheet = write_contact_sheet(tmp_path / "out", jobs, results, title="Sweep")
    measuring = sheet.with_name("measure.html")
    measuring.write_text(sheet.read_text(encoding="utf-8").replace("</body>", MEASURE_CHIPS + "</body>"),
                         encoding="utf-8")
    dom = _run_chromium(tmp_path / "profile", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom",
                        measuring.as_uri()).stdout
    (body,) = Page(dom).with_attr("data-measured")
    measured = json.loads(body["data-measured"])
    assert len(measured["chips"]) == 4
    assert all(width <= measured["card"] + 24 for width in measured["chips"]), measured
    assert measured["spill"] == [0, 0, 0, 0], measured  # wrapped, not spilling out of the chip
    assert measured["lines"] == [2, 2, 2, 2], measured  # each setting on a line of its own
