"""The contact sheet's layout where it leaves the desktop screen: printed (or
saved as PDF), on a phone, and with long tags; measured in headless Chromium."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from browser_helpers import run_chromium
from test_reporter import Page, _picture, finish, make_job, record

from nst_engine.settings import RenderSettings
from pipeline.reporter import write_contact_sheet

pytestmark = pytest.mark.browser


def _sources(tmp_path: Path, contents: int, styles: int):
    src = tmp_path / "src"
    src.mkdir()
    return ([_picture(src / f"photo{i}.png", 20 * i, (60, 40)) for i in range(contents)],
            [_picture(src / f"painting{i}.png", 100 + 40 * i, (40, 40)) for i in range(styles)])


def _measured(sheet: Path, profile: Path, script: str, *flags: str, frame: tuple[int, int] | None = None) -> dict:
    """What `script` measured in the sheet (it sets document.body.dataset.measured).

    frame: a viewport smaller than headless Chromium's smallest window (500 px
    wide), given to the sheet as an iframe of that size in a page of its own."""
    measuring = sheet.with_name("measure.html")
    measuring.write_text(sheet.read_text(encoding="utf-8").replace("</body>", f"<script>{script}</script></body>"),
                         encoding="utf-8")
    page = measuring
    if frame:
        page = sheet.with_name("frame.html")
        page.write_text(f'''<!doctype html><body style="margin:0">
<iframe src="measure.html" width="{frame[0]}" height="{frame[1]}" style="border:0; display:block"></iframe>
<script>addEventListener("load", () => document.body.dataset.measured =
  document.querySelector("iframe").contentDocument.body.dataset.measured);</script></body>''', encoding="utf-8")
        flags = (*flags, "--allow-file-access-from-files")
    dom = run_chromium(profile, *flags, "--dump-dom", page.as_uri()).stdout
    (body,) = Page(dom).with_attr("data-measured")
    return json.loads(body["data-measured"])


def test_a_printed_grid_wider_than_the_page_is_scaled_to_fit_it(tmp_path):
    # Twelve styles side by side: cut off at the page's edge, the last columns
    # were printed nowhere. Each card and header is a picture in the PDF, so
    # the count says whether all of them made it onto the page.
    (content,), styles = _sources(tmp_path, 1, 12)
    jobs = [make_job(content, style, "", RenderSettings(size=64)) for style in styles]
    output_dir = tmp_path / "out"
    for job in jobs:
        finish(output_dir, job)
    sheet = write_contact_sheet(output_dir, jobs, {job.job_id: record(job, "done") for job in jobs}, title="Wide")
    pdf = tmp_path / "sheet.pdf"
    run_chromium(tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", sheet.as_uri())
    pictures = len(re.findall(rb"/Subtype\s*/Image", pdf.read_bytes()))
    assert pictures == 12 + 12 + 1, pictures  # the cards, the style headers, the photo's row header


def test_a_printed_sheet_runs_over_as_many_pages_as_its_rows_need(tmp_path):
    # On screen the grid scrolls inside its own box; printed that way, it was
    # one page showing the first four rows.
    contents, styles = _sources(tmp_path, 12, 2)
    jobs = [make_job(c, s, "", RenderSettings(size=64)) for c in contents for s in styles]
    sheet = write_contact_sheet(tmp_path / "out", jobs, {}, title="Print me")
    pdf = tmp_path / "sheet.pdf"
    run_chromium(tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", sheet.as_uri())
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))
    assert pages >= 3, pages  # 12 rows of cards: more than two landscape pages


PHONE = """
const details = [...document.querySelectorAll("details")];
details.forEach(d => d.open = true);
const panel = details.at(-1).querySelector(".info").getBoundingClientRect();
document.body.dataset.measured = JSON.stringify({
  width: innerWidth, height: innerHeight, grid: document.querySelector("table").getBoundingClientRect().right,
  panel: [panel.left, panel.top, panel.right, panel.bottom],
  chips: [...document.querySelectorAll("th.variant > span")].map(chip => chip.scrollWidth - chip.clientWidth)});
"""


def test_on_a_phone_two_columns_fit_and_a_cards_details_stay_on_screen(tmp_path):
    contents, styles = _sources(tmp_path, 2, 1)
    # A sweep whose chips hold long values: one token, no comma, no space, to wrap at.
    layers = {"relu1_1": 0.5, "relu3_1": 2.0}
    jobs = [make_job(c, styles[0], f"style_layers={variant}", RenderSettings(size=64).with_overrides(**settings))
            for c in contents for variant, settings in (("relu1_1:0.5,relu3_1:2", {"style_layers": layers}),
                                                        ("relu2_1:1", {"style_layers": ["relu2_1"]}))]
    output_dir = tmp_path / "out"
    for job in jobs:
        finish(output_dir, job)
    sheet = write_contact_sheet(output_dir, jobs, {job.job_id: record(job, "done") for job in jobs}, title="Phone")
    seen = _measured(sheet, tmp_path / "profile", PHONE, "--window-size=800,900", frame=(390, 800))
    assert (seen["width"], seen["height"]) == (390, 800), seen
    assert seen["grid"] <= seen["width"], seen  # no sideways scrolling for two styles
    left, top, right, bottom = seen["panel"]  # the right-hand column's details
    assert left >= 0 and right <= seen["width"] and top >= 0 and bottom <= seen["height"], seen
    assert seen["chips"] and all(spill <= 0 for spill in seen["chips"]), seen  # wrapped inside the chip


DESKTOP_DETAILS = """
const seen = [];
for (const details of document.querySelectorAll("details")) {
  details.open = true;  // as a click does; the others of its name close
  const box = details.querySelector(".info").getBoundingClientRect();
  // Hit-test the panel's corners: a panel clipped by the grid's scroll box, or
  // off the window, is not what is found there.
  const corners = [[box.left + 16, box.top + 16], [box.right - 16, box.bottom - 16]].map(  // inside the rounding
    ([x, y]) => details.querySelector(".info").contains(document.elementFromPoint(x, y)));
  seen.push({box: [box.left, box.top, box.right, box.bottom], corners,
             open: document.querySelectorAll("details[open]").length,
             heading: details.querySelector(".info .what").textContent,
             alt: details.closest(".card").querySelector("img").alt});
}
document.body.dataset.measured = JSON.stringify({width: innerWidth, height: innerHeight, seen});
"""


def test_a_cards_details_show_whole_in_the_window_one_at_a_time(tmp_path):
    # Hung under its card, the panel of a card in the bottom row or the right-hand
    # column ran past the grid's scroll box: values and links out of sight.
    contents, styles = _sources(tmp_path, 3, 3)
    jobs = [make_job(c, s, "", RenderSettings(size=64)) for c in contents for s in styles]
    output_dir = tmp_path / "out"
    for job in jobs:
        finish(output_dir, job)
    sheet = write_contact_sheet(output_dir, jobs, {job.job_id: record(job, "done") for job in jobs}, title="Desk")
    measured = _measured(sheet, tmp_path / "profile", DESKTOP_DETAILS, "--window-size=1280,700")
    assert len(measured["seen"]) == 9
    for panel in measured["seen"]:
        left, top, right, bottom = panel["box"]
        assert left >= 0 and right <= measured["width"] and top >= 0 and bottom <= measured["height"], panel
        assert panel["corners"] == [True, True], panel  # nothing clips or covers it
        assert panel["open"] == 1, panel  # the one before closed: they would stack in one place
        assert panel["heading"] == panel["alt"], panel  # it names its card, as the picture's alt text does


ROW_NAMES = """
document.body.dataset.measured = JSON.stringify([...document.querySelectorAll("tbody th")].map(th => {
  const name = th.querySelector(".name"), box = name.getBoundingClientRect(), cell = th.getBoundingClientRect();
  const range = document.createRange();
  range.selectNodeContents(name);
  const shown = [...range.getClientRects()].filter(line => line.top < box.bottom - 1);  // not clamped away
  return {text: name.textContent, whole: name.scrollHeight <= name.clientHeight,
          lines: new Set(shown.map(line => Math.round(line.top))).size,
          inside: box.left >= cell.left && box.right <= cell.right};
}));
"""


@pytest.mark.parametrize("frame", [None, (390, 800)], ids=["desktop", "phone"])
def test_a_photos_long_name_wraps_in_its_row_header_instead_of_ending_in_an_ellipsis(tmp_path, frame):
    # On a phone "neuschwanstein" showed as "neusch…", whole only in a title nobody can hover.
    src = tmp_path / "src"
    src.mkdir()
    names = ["neuschwanstein", "cincinnati_bridge", "a_" * 60 + "z"]
    contents = [_picture(src / f"{name}.png", 40 * i, (60, 40)) for i, name in enumerate(names)]
    style = _picture(src / "painting.png", 120, (40, 40))
    jobs = [make_job(content, style, "", RenderSettings(size=64)) for content in contents]
    sheet = write_contact_sheet(tmp_path / "out", jobs, {}, title="Names")
    flags = ("--window-size=800,900",) if frame else ("--window-size=1280,900",)
    *named, endless = _measured(sheet, tmp_path / "profile", ROW_NAMES, *flags, frame=frame)
    for name, seen in zip(names, named, strict=False):
        assert seen["text"] == name and seen["whole"] and seen["inside"], seen
    assert endless["lines"] == 3 and not endless["whole"] and endless["inside"], endless  # clamped at three lines


TAGS = """
const boxes = [...document.querySelectorAll(".tag")].map(tag => {
  const card = tag.closest(".card").getBoundingClientRect(), box = tag.getBoundingClientRect();
  const frame = tag.closest(".card").querySelector(".frame").getBoundingClientRect();
  return [box.left - card.left, card.right - box.right, tag.scrollWidth - tag.clientWidth,
          box.top - frame.bottom, card.bottom - box.bottom];
});
document.body.dataset.measured = JSON.stringify({boxes});
"""


def test_a_tag_naming_several_settings_wraps_inside_its_card(tmp_path):
    (content,), (style,) = _sources(tmp_path, 1, 1)
    base = make_job(content, style, "", RenderSettings(size=40), source="jobs[0]")
    other = replace(base, job_id="b" * 12, output_name="other.png", source="jobs[1]",
                    settings=base.settings.with_overrides(size=48, init=str(style), optimizer="adam"))
    sheet = write_contact_sheet(tmp_path / "out", [base, other], {}, title="Tags")
    seen = _measured(sheet, tmp_path / "profile", TAGS, "--window-size=1400,900")
    assert len(seen["boxes"]) == 2
    # Inside the card, its text inside its box, and under the picture, not over it.
    assert all(left >= 0 and right >= 0 and spill <= 0 and below >= 0 and bottom >= 0
               for left, right, spill, below, bottom in seen["boxes"]), seen


LINE_BREAKS = """
// Each place a tag or a chip's text goes on to a new line, as "last char|next char".
const breaks = [];
for (const box of document.querySelectorAll(".tag, th.variant .setting")) {
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let lastTop = null, lastChar = "";
  for (let node; (node = walker.nextNode());) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const top = range.getBoundingClientRect().top;
      if (lastTop !== null && top > lastTop + 2) breaks.push(lastChar + "|" + node.data[i]);
      [lastTop, lastChar] = [top, node.data[i]];
    }
  }
}
document.body.dataset.measured = JSON.stringify({breaks});
"""


def test_on_a_phone_tags_and_chips_wrap_after_a_mark_never_inside_a_word(tmp_path):
    # "preserve_colo r=false" and "relu1_1:0." / "5,relu2_1:1" on a 390 px screen.
    (content,), (style,) = _sources(tmp_path, 1, 1)
    base = make_job(content, style, "", RenderSettings(size=40), source="jobs[0]")
    other = replace(base, job_id="b" * 12, output_name="other.png", source="jobs[1]",
                    settings=base.settings.with_overrides(preserve_color=True, optimizer="adam", pooling="avg"))
    swept = make_job(content, style, "style_layers=relu1_1:0.5,relu2_1:1",
                     RenderSettings(size=40).with_overrides(style_layers={"relu1_1": 0.5, "relu2_1": 1.0}))
    sheet = write_contact_sheet(tmp_path / "out", [base, other, swept], {}, title="Breaks")
    seen = _measured(sheet, tmp_path / "profile", LINE_BREAKS, "--window-size=800,900", frame=(390, 800))
    assert seen["breaks"], "nothing wrapped: the test would show nothing"
    assert all(pair[0] in ",=:_" for pair in seen["breaks"]), [pair for pair in seen["breaks"] if pair[0] not in ",=:_"]


WIDE_SWEEP = """
const wrap = document.querySelector(".grid-wrap");
const seen = [0, 1 / 3, 2 / 3].map(along => {  // from the start to two thirds of the way along
  wrap.scrollLeft = wrap.scrollWidth * along;
  const photos = document.querySelector("tbody th").getBoundingClientRect();
  const name = document.querySelector("th.style .name").getBoundingClientRect();
  return {scrolled: wrap.scrollLeft, photos: photos.right, name: [name.left, name.right], width: wrap.clientWidth};
});
document.body.dataset.measured = JSON.stringify(seen);
"""


def test_a_paintings_name_stays_in_sight_over_a_sweep_wider_than_the_screen(tmp_path):
    # Centred over 14 columns, the name sat off-screen whichever way one scrolled.
    (content,), (style,) = _sources(tmp_path, 1, 1)
    jobs = [make_job(content, style, f"style_weight={weight}",
                     RenderSettings(size=64).with_overrides(style_weight=float(weight))) for weight in range(1, 15)]
    sheet = write_contact_sheet(tmp_path / "out", jobs, {}, title="Wide sweep")
    for seen in _measured(sheet, tmp_path / "profile", WIDE_SWEEP, "--window-size=1200,900"):
        left, right = seen["name"]
        assert left >= seen["photos"] and right <= seen["width"], seen  # beside the photos' column, on screen
    assert seen["scrolled"] > 1000, seen
