"""The contact sheet, checked by parsing the HTML it writes (fast, no browser)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from PIL import Image, ImageDraw

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.outputs import JOB_ID_KEY, encode_png, write_bytes_atomic, write_json_atomic
from pipeline.reporter import write_contact_sheet
from pipeline.sheet_cards import make_card

XSS_NAME = "<img src=x onerror=alert(1)>"
WRITTEN_AT = dt.datetime(2026, 11, 21, 5, 0, tzinfo=dt.timezone.utc)  # the header says when
VARIANTS = ("style_weight=1e+03", "style_weight=1e+04")
# Per job, in the order jobs are built: content-major, then style, then variant.
STATUSES = ["done", "done", "failed", "done", "pending", "interrupted", "done", "pending"]
LOSSES = {"total": 1.25, "content": 0.31, "style": 0.94, "style.relu1_1": 0.1, "style.relu2_1": 0.2}


def _picture(path: Path, hue: int, size=(48, 32)) -> Path:
    """A small but not flat image, so thumbnails and screenshots show something."""
    image = Image.new("RGB", size, (hue, 90, 255 - hue))
    draw = ImageDraw.Draw(image)
    draw.ellipse(
        (size[0] // 4, size[1] // 5, size[0] * 3 // 4, size[1] * 4 // 5), fill=(250, 220, hue)
    )
    image.save(path)
    return path


def _fake_render(content: str, style: str, weight: float) -> Image.Image:
    base = Image.open(content).convert("RGB")
    paint = Image.open(style).convert("RGB").resize(base.size)
    return Image.blend(base, paint, min(0.35 + weight / 4e4, 0.8))


def make_job(content: Path, style: Path, variant: str, settings: RenderSettings, **kw) -> RenderJob:
    key = f"{content}|{style}|{variant}|{settings}|{kw.get('source', '')}"
    job_id = hashlib.sha256(key.encode()).hexdigest()[:12]
    content_label, style_label = kw.pop("content_label", content.stem), style.stem
    # The output name keeps the raw labels to exercise URL quoting ('+', '=', '<', '#').
    output = f"renders/{content_label}--{style_label}--{variant or 'base'}-{job_id}.png"
    return RenderJob(
        job_id,
        str(content),
        (str(style),),
        settings,
        output,
        content_label,
        style_label,
        variant,
        **kw,
    )


def record(job: RenderJob, status: str, seconds: float = 12.5) -> dict:
    return {
        "job_id": job.job_id,
        "status": status,
        "output": job.output_name,
        "error": "CUDA out of memory: tried to allocate 2.00 GiB" if status == "failed" else None,
        "content_label": job.content_label,
        "style_label": job.style_label,
        "variant": job.variant,
        "settings": job.settings.to_dict(),
        "stats": {
            "losses": LOSSES,
            "iterations": job.settings.iterations,
            "seconds": seconds,
            "peak_memory_mb": 812,
            "device": "cpu",
            "cache": {"hits": 1, "misses": 0},
        },
        "worker_pid": 4242,
        "attempts": 2 if status == "failed" else 1,
        "finished_at": "2026-11-21T05:00:00Z",
    }


def finish(output_dir: Path, job: RenderJob) -> None:
    image = _fake_render(job.content, job.styles[0], job.settings.style_weight)
    write_bytes_atomic(output_dir / job.output_name, encode_png(image, {JOB_ID_KEY: job.job_id}))
    write_json_atomic(output_dir / job.sidecar_name, job.to_dict())


def make_gallery(tmp_path: Path, contents=None, styles=None):
    """2 contents x 2 styles x 2 sweep variants; one content has a hostile file name."""
    src = tmp_path / "src"
    src.mkdir()
    if contents is None:
        contents = [_picture(src / "chelsea.png", 40), _picture(src / f"{XSS_NAME}.png", 200)]
    if styles is None:
        styles = [_picture(src / "starry_night.png", 120, (40, 40)), _picture(src / "wave.png", 10)]
    base = RenderSettings().with_overrides(size=256, iterations=60)
    jobs = [
        make_job(Path(c), Path(s), v, base.with_overrides(style_weight=float(v.split("=")[1])))
        for c in contents
        for s in styles
        for v in VARIANTS
    ]
    output_dir = tmp_path / "out"
    results = {}
    for job, status in zip(jobs, STATUSES, strict=True):
        if status == "done":
            finish(output_dir, job)
        if status != "pending":
            results[job.job_id] = record(job, status)
    return output_dir, jobs, results


class Page(HTMLParser):
    """Every start tag with its attributes, plus the page's text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html.replace("<wbr>", ""))  # a place to wrap, not a break in the text a reader sees

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def with_attr(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in attrs]

    def cards(self) -> list[dict[str, str | None]]:
        """Each card's attributes plus the tooltip of its picture frame."""
        cards: list[dict[str, str | None]] = []
        for _, attrs in self.tags:
            if "data-status" in attrs:
                cards.append(dict(attrs))
            elif attrs.get("class") == "frame" and cards:
                cards[-1]["tooltip"] = attrs.get("title")
        return cards


def render(tmp_path: Path, **kw):
    output_dir, jobs, results = make_gallery(tmp_path)
    path = write_contact_sheet(output_dir, jobs, results, title="Night <run>", written_at=WRITTEN_AT, **kw)
    html = path.read_text(encoding="utf-8")
    return output_dir, jobs, results, html, Page(html)


def test_cells_are_counted_per_status(tmp_path):
    _, jobs, _, _, page = render(tmp_path)
    statuses = Counter(a["data-status"] for a in page.with_attr("data-status"))
    assert statuses == Counter(STATUSES)
    assert {a["data-job-id"] for a in page.with_attr("data-job-id")} == {j.job_id for j in jobs}


def test_header_shows_counts_time_and_title(tmp_path):
    _, _, _, html, page = render(tmp_path)
    text = " ".join(" ".join(page.text).split())
    assert "Night &lt;run&gt;" in html
    for status, count in Counter(STATUSES).items():
        assert f"{count} {status}" in text
    assert "render time 1 min 15 s" in text  # 6 records x 12.5 s
    assert "2026-11-21 05:00 UTC" in text


def test_rows_columns_and_variant_headers(tmp_path):
    _, _, _, _, page = render(tmp_path)
    row_headers = [a for t, a in page.tags if t == "th" and a.get("scope") == "row"]
    style_headers = [a for t, a in page.tags if t == "th" and a.get("class") == "style"]
    assert [a["title"] for a in row_headers] == ["chelsea", XSS_NAME]
    assert [a["title"] for a in style_headers] == ["starry_night", "wave"]
    assert all(a["colspan"] == "2" for a in style_headers)
    variant_text = [t for t in page.text if t.strip() in VARIANTS]
    assert variant_text == list(VARIANTS) * 2
    assert len([a for t, a in page.tags if t == "td"]) == 8


def test_links_and_images_point_at_existing_files(tmp_path):
    output_dir, _, _, _, page = render(tmp_path)
    urls = [a["href"] for t, a in page.tags if t == "a"] + [
        a["src"] for t, a in page.tags if t == "img"
    ]
    # 4 done cards x (frame + details link to the image + details link to the sidecar)
    assert len([u for u in urls if "renders/" in u]) == 12
    assert len([u for u in urls if "renders/" in u and u.endswith(".json")]) == 4
    assert len([u for u in urls if u.startswith("thumbs/sources/")]) == 4
    # Each row's and column's picture opens the photo or painting itself.
    assert sorted(unquote(u) for u in urls if u.startswith("../src/")) == [
        f"../src/{name}.png" for name in sorted([XSS_NAME, "chelsea", "starry_night", "wave"])]
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and not parts.fragment and not parts.query, url
        assert (output_dir / unquote(parts.path)).is_file(), url


def test_hostile_file_name_is_shown_as_text(tmp_path):
    _, _, _, html, page = render(tmp_path)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html
    assert not page.with_attr("onerror")
    assert XSS_NAME in "".join(page.text)


def test_failed_interrupted_and_pending_cells_say_so(tmp_path):
    _, _, _, html, page = render(tmp_path)
    failed = next(a for a in page.cards() if a["data-status"] == "failed")
    assert "CUDA out of memory" in failed["tooltip"]
    assert html.count("CUDA out of memory") >= 2  # in the cell and in its details
    assert "resumes next run" in html
    assert "".join(page.text).count("pending") >= 2


def test_done_cells_explain_themselves_on_hover_and_click(tmp_path):
    _, _, _, html, page = render(tmp_path)
    assert all(card["tooltip"] for card in page.cards())
    done = [a for a in page.cards() if a["data-status"] == "done"]
    for card in done:
        tip = card["tooltip"]
        assert "size: 256 px" in tip and "iterations: 60" in tip
        assert "style_weight" in tip and "loss: 1.25" in tip and "device: cpu" in tip
    assert html.count('<details name="details">') == 6  # every card with a result, none for pending
    # The weighted parts say so; the style error before style_weight compares across the sweep.
    tips = {card["tooltip"].splitlines()[0]: card["tooltip"] for card in done}
    light = tips["chelsea × starry_night · style_weight=1e+03"]
    assert "weighted parts: content 0.31 · style 0.94" in light
    assert "style, unweighted: 0.00094 (relu1_1 0.1 · relu2_1 0.2)" in light
    assert "style, unweighted: 9.4e-05 (" in tips["chelsea × starry_night · style_weight=1e+04"]


def test_thumbnails_are_made_once_and_refreshed_when_the_image_changes(tmp_path):
    output_dir, jobs, results, _, _ = render(tmp_path)
    thumbs = sorted((output_dir / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == 4 + 4  # done jobs + source images
    before = {p: p.stat().st_mtime_ns for p in thumbs}
    write_contact_sheet(output_dir, jobs, results, title="again")
    assert {p: p.stat().st_mtime_ns for p in thumbs} == before
    done = next(j for j, s in zip(jobs, STATUSES, strict=True) if s == "done")
    thumb = output_dir / "thumbs" / f"{done.job_id}.jpg"
    os.utime(thumb, ns=(1, 1))  # older than its image now
    write_contact_sheet(output_dir, jobs, results, title="again")
    assert thumb.stat().st_mtime_ns > 1


def test_several_jobs_in_one_cell_are_all_shown(tmp_path):
    output_dir, jobs, results = make_gallery(tmp_path)
    twin = make_job(
        Path(jobs[0].content),
        Path(jobs[0].styles[0]),
        jobs[0].variant,
        jobs[0].settings.with_overrides(tv_weight=1.0),
        source="jobs[3]",
    )
    finish(output_dir, twin)
    results[twin.job_id] = record(twin, "done")
    html = write_contact_sheet(output_dir, [*jobs, twin], results, title="t").read_text()
    cell = re.search(r"<td[^>]*>(.*?)</td>", html, re.S).group(1)
    assert cell.count("data-status=") == 2
    # Each card is tagged with the setting that tells it from the other.
    tags = re.findall(r'<span class="tag">(.*?)</span>', cell)
    assert [tag.replace("<wbr>", "") for tag in tags] == ["tv_weight=0", "tv_weight=1"]
    assert "tv_weight: 1" in cell


def test_stacked_cards_are_tagged_by_how_they_differ():
    from pipeline.labels import tell_apart

    base = make_job(Path("/p/cat.jpg"), Path("/a/starry.jpg"), "", RenderSettings(size=64), source="jobs[0]")
    other = replace(base, job_id="b" * 12, source="jobs[1]",
                    settings=base.settings.with_overrides(init="/a/night_cafe.jpg", optimizer="adam"))
    assert tell_apart([base, other]) == ["init=content,optimizer=lbfgs", "init=night_cafe,optimizer=adam"]
    assert tell_apart([base, replace(base, settings=base.settings.with_overrides(size=72))]) == ["size=64", "size=72"]
    # Nothing differs in the settings (it cannot, for one id): where they come from.
    assert tell_apart([base, replace(base, source="jobs[4]")]) == ["jobs[0]", "jobs[4]"]


def test_broken_source_image_shows_its_name_only(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    broken = src / "broken.jpg"
    broken.write_bytes(b"")
    text = src / "notes.jpg"
    text.write_text("not an image")
    good = _picture(src / "good.png", 30)
    job = make_job(good, broken, "", RenderSettings())
    other = make_job(text, good, "", RenderSettings())
    out = tmp_path / "out"
    html = write_contact_sheet(out, [job, other], {}, title="t").read_text()
    assert "broken" in html and "notes" in html and html.count("no preview") == 2
    assert '<tr class="variants">' not in html  # nothing swept: no second header row


def test_page_is_self_contained_and_written_atomically(tmp_path):
    output_dir, _, _, html, page = render(tmp_path)
    assert not re.search(r"https?://|//cdn|@import|@font-face", html)
    assert not [t for t, a in page.tags if t in ("link", "script")]
    assert not list(output_dir.rglob("*.tmp"))


def test_results_for_other_jobs_are_ignored(tmp_path):
    output_dir, jobs, results = make_gallery(tmp_path)
    stray = {"job_id": "ffffffffffff", "status": "failed", "error": "old manifest"}
    html = write_contact_sheet(output_dir, jobs, {**results, "ffffffffffff": stray}, title="t")
    assert "old manifest" not in html.read_text()


def test_done_job_whose_image_vanished_still_shows_as_done(tmp_path):
    output_dir, jobs, results = make_gallery(tmp_path)
    done = next(j for j, s in zip(jobs, STATUSES, strict=True) if s == "done")
    (output_dir / done.output_name).unlink()
    page = Page(write_contact_sheet(output_dir, jobs, results, title="t").read_text())
    card = next(c for c in page.cards() if c["data-job-id"] == done.job_id)
    assert card["data-status"] == "done"
    assert "image not found" in "".join(page.text)
    assert not (output_dir / "thumbs" / f"{done.job_id}.jpg").exists()


def test_a_done_job_whose_thumbnail_cannot_be_written_shows_its_full_image(tmp_path):
    output_dir, jobs, results = make_gallery(tmp_path)
    shutil.rmtree(output_dir / "thumbs", ignore_errors=True)
    (output_dir / "thumbs").write_text("a file where the thumbnails go")  # refused even as root
    page = Page(write_contact_sheet(output_dir, jobs, results, title="t").read_text())
    done = [job for job, status in zip(jobs, STATUSES, strict=True) if status == "done"]
    shown = {attrs["src"] for tag, attrs in page.tags if tag == "img" and "src" in attrs}
    assert all(quote(job.output_name) in shown for job in done), shown
    assert "image not found" not in "".join(page.text)


def _blend(content: Path, styles: list[Path], weights: list[float], name: str) -> RenderJob:
    settings = RenderSettings(size=64).with_overrides(style_blend=weights)
    job_id = hashlib.sha256(f"{content}{styles}{weights}".encode()).hexdigest()[:12]
    return RenderJob(job_id, str(content), tuple(map(str, styles)), settings, f"{name}-{job_id}.png",
                     content.stem, name, "")


def test_two_blends_of_the_same_paintings_are_two_columns_under_their_own_names(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    cat, starry, cafe = (_picture(src / f"{n}.png", h) for n, h in (("cat", 40), ("starry", 120), ("cafe", 10)))
    jobs = [_blend(cat, [starry, cafe], [0.8, 0.2], "mostly_starry"),
            _blend(cat, [starry, cafe], [0.2, 0.8], "mostly_cafe")]
    html = write_contact_sheet(tmp_path / "out", jobs, {}, title="t").read_text(encoding="utf-8")
    headers = [attrs["title"] for attrs in Page(html).with_attr("title") if attrs.get("class") == "style"]
    assert headers == ["mostly_starry", "mostly_cafe"]
    assert [card["tooltip"] for card in Page(html).cards()] == [
        "cat × mostly_starry: pending", "cat × mostly_cafe: pending"]


def test_a_card_names_its_pair_as_its_row_and_column_do(tmp_path):
    # Two photos both called cat.jpg are the rows a/cat.jpg and b/cat.jpg; the
    # plain job in a sweep stands under its chip, style_weight=5.
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    cats = [_picture(src / folder / "cat.png", hue) for folder, hue in (("a", 40), ("b", 200))]
    starry = _picture(src / "starry.png", 120)
    base = RenderSettings(size=64)
    jobs = [make_job(cat, starry, "", base) for cat in cats]
    jobs.append(make_job(cats[0], starry, "style_weight=10", base.with_overrides(style_weight=10.0)))
    output_dir = tmp_path / "out"
    for job in jobs:
        finish(output_dir, job)
    results = {job.job_id: record(job, "done") for job in jobs}
    page = Page(write_contact_sheet(output_dir, jobs, results, title="t").read_text(encoding="utf-8"))
    alts = [attrs["alt"] for tag, attrs in page.tags if tag == "img" and attrs.get("loading") == "lazy"]
    assert alts == ["a/cat.png × starry · style_weight=5", "a/cat.png × starry · style_weight=10",
                    "b/cat.png × starry · style_weight=5"]
    assert [card["tooltip"].splitlines()[0] for card in page.cards()] == alts


def test_a_resumed_card_says_so_on_its_face_and_gives_the_whole_time_and_the_part_before_the_resume(tmp_path):
    job = make_job(tmp_path / "chelsea.png", tmp_path / "wave.png", "", RenderSettings())
    resumed = record(job, "done", seconds=6.2)
    resumed["stats"].update(resumed_from=19, seconds_before_resume=5.7)
    card = make_card(tmp_path, job, resumed)
    details = dict(card.details)
    assert (details["time"], details["resumed at iteration"]) == ("6.2 s", "19 (after 5.7 s)")
    # On the card's face too: it is not pixel-identical to an uninterrupted render.
    assert card.caption.endswith(" · resumed at 19"), card.caption
    assert "resumed" not in make_card(tmp_path, job, record(job, "done", seconds=6.2)).caption
    del resumed["stats"]["seconds_before_resume"]  # a render resumed from an older checkpoint
    assert dict(make_card(tmp_path, job, resumed).details)["resumed at iteration"] == "19"


def test_a_card_names_the_time_its_job_ended_by_how_it_ended(tmp_path):
    # An interrupted job did not finish: its card said "finished: 05:00".
    job = make_job(tmp_path / "chelsea.png", tmp_path / "wave.png", "", RenderSettings())
    ended = {status: dict(make_card(tmp_path, job, record(job, status)).details)
             for status in ("done", "failed", "interrupted")}
    assert [ended[status].get(label) for status, label in
            (("done", "finished"), ("failed", "failed"), ("interrupted", "stopped"))] == ["2026-11-21T05:00:00Z"] * 3
    assert "finished" not in ended["interrupted"] and "finished" not in ended["failed"]
    assert "stopped:" not in make_card(tmp_path, job, record(job, "interrupted")).tooltip  # said on click only


def test_a_sweep_points_card_names_its_swept_setting_even_at_its_default(tmp_path):
    # style_weight: [1, 5, 25]: 5 is the default, and its card listed no style_weight.
    default = RenderSettings().style_weight
    cards = {weight: make_card(tmp_path, job, record(job, "done")) for weight, job in (
        (weight, make_job(tmp_path / "chelsea.png", tmp_path / "wave.png", f"style_weight={weight:g}",
                          RenderSettings().with_overrides(style_weight=weight))) for weight in (1.0, default))}
    assert dict(cards[default].details)["style_weight"] == f"{default:g}"
    assert dict(cards[1.0].details)["style_weight"] == "1"
    assert "tv_weight" not in dict(cards[default].details)  # a default that was not swept stays out
    plain = make_job(tmp_path / "chelsea.png", tmp_path / "wave.png", "", RenderSettings())
    assert "style_weight" not in dict(make_card(tmp_path, plain, record(plain, "done")).details)


def test_stacked_plain_jobs_are_named_by_their_own_settings_not_the_first_ones(tmp_path):
    # Two plain jobs of one pair (another init, another optimizer) beside a
    # sweep over init: the plain chip cannot name one card's init for both.
    src = tmp_path / "src"
    src.mkdir()
    cat, starry = _picture(src / "cat.png", 40), _picture(src / "starry.png", 120)
    base = RenderSettings(size=64)
    plain = [make_job(cat, starry, "", base.with_overrides(init="noise"), source="jobs[0]"),
             make_job(cat, starry, "", base.with_overrides(optimizer="adam"), source="jobs[1]")]
    sweep = [make_job(cat, starry, "init=content", base, source="jobs[2]")]
    html = write_contact_sheet(tmp_path / "out", [*plain, *sweep], {}, title="t").read_text(encoding="utf-8")
    chips = re.findall(r'<th class="variant">(.*?)</th>', html)
    assert [re.sub(r"<[^>]+>", " ", chip.replace("<wbr>", "")).split() for chip in chips] == [
        ["as", "tagged"], ["init=content"]]
    assert [card["tooltip"] for card in Page(html).cards()] == [
        "cat × starry · as tagged · init=noise,optimizer=lbfgs: pending",
        "cat × starry · as tagged · init=content,optimizer=adam: pending",
        "cat × starry · init=content: pending"]


def test_the_style_cache_fact_counts_in_words():
    from pipeline.sheet_cards import _run_facts

    def cache_fact(hits, misses):
        return dict(_run_facts({"stats": {"cache": {"hits": hits, "misses": misses}}}))["style cache"]

    assert cache_fact(0, 1) == "0 hits · 1 miss"  # "0 hit" read as a slip
    assert cache_fact(1, 2) == "1 hit · 2 misses"


def test_soft_breaks_escape_the_text_before_marking_where_it_may_wrap():
    from pipeline.reporter import soft_breaks

    assert soft_breaks('init=<img src=x>,a:b') == "init=<wbr>&lt;img src=<wbr>x&gt;,<wbr>a:<wbr>b"
    assert soft_breaks("preserve_color") == "preserve_<wbr>color"


def test_a_failed_card_shows_the_reason_from_the_files_name_and_offers_the_details(tmp_path):
    job = make_job(tmp_path / "chelsea.png", tmp_path / "wave.png", "", RenderSettings())
    failed = {**record(job, "failed"), "error": "cronphotos/2024/chelsea.png is empty (0 bytes)"}
    card = make_card(tmp_path, job, failed)
    # The card sits in the photo's row: its folders only pushed the reason out of a narrow card.
    assert card.error == "chelsea.png is empty (0 bytes)"
    assert dict(card.details)["error"] == "cronphotos/2024/chelsea.png is empty (0 bytes)"
    assert "cronphotos/2024/chelsea.png is empty" in card.tooltip
    assert card.caption == "details"  # the device alone ("cpu") did not invite a click
    for reason in ("timed out after 12 s on cpu", "could not save a/b.png: File too large", "my photos/c.png is empty"):
        assert make_card(tmp_path, job, {**failed, "error": reason}).error == reason
