"""How the contact sheet names and orders a style column's variants."""

from __future__ import annotations

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.labels import setting_parts
from pipeline.sheet_variants import order_variants


def _job(variant: str, **settings) -> RenderJob:
    return RenderJob(f"id-{variant}", "/in/cat.jpg", ("/in/starry.jpg",),
                     RenderSettings().with_overrides(**settings), f"{variant}.png", "cat", "starry", variant)


def _examples(*jobs: RenderJob) -> dict[str, RenderJob]:
    return {job.variant: job for job in jobs}


def test_a_strip_next_to_its_plain_job_reads_in_numeric_order_and_names_the_plain_one():
    plain = _job("", style_weight=5.0)
    sweep = [_job(f"style_weight={w}", style_weight=float(w)) for w in (1, 2, 10, 25)]
    variants, labels = order_variants(_examples(plain, *sweep))
    assert variants == ["style_weight=1", "style_weight=2", "", "style_weight=10", "style_weight=25"]
    assert labels == ["style_weight=1", "style_weight=2", "style_weight=5", "style_weight=10", "style_weight=25"]


def test_a_column_with_only_its_plain_job_shows_no_label():
    assert order_variants(_examples(_job(""))) == ([""], [""])


def test_two_swept_settings_sort_by_the_first_then_the_second():
    jobs = [_job(f"style_weight={s},tv_weight={t}", style_weight=float(s), tv_weight=float(t))
            for s, t in ((10, 0), (1, 1), (1, 0))]
    plain = _job("", style_weight=5.0, tv_weight=0.0)
    variants, labels = order_variants(_examples(*jobs, plain))
    assert variants == ["style_weight=1,tv_weight=0", "style_weight=1,tv_weight=1", "",
                        "style_weight=10,tv_weight=0"]
    assert labels[2] == "style_weight=5,tv_weight=0"


def test_values_that_are_not_numbers_keep_the_order_written():
    jobs = [_job("pooling=max", pooling="max"), _job("pooling=avg", pooling="avg")]
    plain = _job("", iterations=7)  # differs in a setting nobody swept
    variants, labels = order_variants(_examples(plain, *jobs))
    assert variants == ["", "pooling=max", "pooling=avg"]
    # The plain job is not the pooling=max point of the strip: its label says how it differs.
    assert labels == ["pooling=max,iterations=7", "pooling=max", "pooling=avg"]


def test_a_plain_job_from_another_entry_is_labelled_with_how_it_differs():
    sweep = [_job(f"style_weight={w}", style_weight=float(w), iterations=50) for w in (1, 25)]
    other = _job("", style_weight=5.0, iterations=50, optimizer="adam", pooling="avg")
    variants, labels = order_variants(_examples(*sweep, other))
    assert variants == ["style_weight=1", "", "style_weight=25"]
    assert labels == ["style_weight=1", "style_weight=5,pooling=avg,optimizer=adam", "style_weight=25"]
    # Where the strip's own jobs disagree on a setting, every card of the strip names it.
    mixed = [_job("style_weight=1", style_weight=1.0, seed=1), _job("style_weight=25", style_weight=25.0, seed=2)]
    assert order_variants(_examples(*mixed, _job("", seed=3)))[1] == [
        "style_weight=1,seed=1", "style_weight=5,seed=3", "style_weight=25,seed=2"]


def test_two_entries_sweeping_one_pair_say_which_entry_each_point_is():
    # One entry sweeps style_weight; another, with `optimizer: adam`, sweeps it too:
    # one strip, where the adam points read like the others.
    lbfgs = [_job(f"style_weight={w}", style_weight=float(w)) for w in (25, 1)]
    adam = [_job(f"style_weight={w}", style_weight=float(w), optimizer="adam") for w in (2, 50)]
    variants, labels = order_variants(_examples(*lbfgs, *adam))
    assert labels == ["style_weight=1,optimizer=lbfgs", "style_weight=2,optimizer=adam",
                      "style_weight=25,optimizer=lbfgs", "style_weight=50,optimizer=adam"]


def test_a_sweep_without_a_plain_job_keeps_its_names():
    jobs = [_job(f"style_weight={w}", style_weight=w) for w in (1e4, 1e3)]
    variants, labels = order_variants(_examples(*jobs))
    assert variants == labels == ["style_weight=1000.0", "style_weight=10000.0"]


def test_the_sheet_shows_the_strip_in_order_with_a_cell_under_each_label(tmp_path):
    from pathlib import Path

    from test_reporter import Page, _picture, make_job

    from pipeline.reporter import write_contact_sheet

    (tmp_path / "src").mkdir()
    cat, starry, wave = (_picture(tmp_path / "src" / f"{n}.png", h) for n, h in (("cat", 40), ("starry", 120), ("wave", 10)))
    base = RenderSettings().with_overrides(size=64, iterations=5)
    jobs = [make_job(Path(cat), Path(starry), "", base), make_job(Path(cat), Path(wave), "", base)] + [
        make_job(Path(cat), Path(starry), f"style_weight={w}", base.with_overrides(style_weight=float(w)))
        for w in (1, 2, 10, 25)
    ]
    page = Page(write_contact_sheet(tmp_path / "out", jobs, {}, title="t").read_text(encoding="utf-8"))
    chips = [t.strip() for t in page.text if t.strip().startswith("style_weight=")]
    assert chips == [f"style_weight={w}" for w in (1, 2, 5, 10, 25)]
    assert "default" not in [t.strip() for t in page.text]  # the wave column has no chip
    cells = [a["data-cell"] for a in page.with_attr("data-cell")]
    assert cells == ["cat × starry · style_weight=1", "cat × starry · style_weight=2", "cat × starry",
                     "cat × starry · style_weight=10", "cat × starry · style_weight=25", "cat × wave"]


def test_numbers_sort_by_value_beside_a_swept_setting_that_is_not_a_number():
    # sweep: {style_weight: [10, 2], preserve_color: [true, false]}, in the manifest's order.
    jobs = [_job(f"style_weight={s},preserve_color={str(p).lower()}", style_weight=float(s), preserve_color=p)
            for s in (10, 2) for p in (True, False)]
    variants, _ = order_variants(_examples(*jobs))
    assert variants == ["style_weight=2,preserve_color=true", "style_weight=2,preserve_color=false",
                        "style_weight=10,preserve_color=true", "style_weight=10,preserve_color=false"]


def test_the_variant_names_say_which_swept_setting_sorts_first():
    # tv_weight is named first, though style_weight comes first among the settings.
    jobs = [_job(f"tv_weight={t},style_weight={s}", style_weight=float(s), tv_weight=float(t))
            for t in (1, 0) for s in (25, 5)]
    variants, _ = order_variants(_examples(*jobs))
    assert variants == ["tv_weight=0,style_weight=5", "tv_weight=0,style_weight=25",
                        "tv_weight=1,style_weight=5", "tv_weight=1,style_weight=25"]


def test_a_label_splits_into_its_settings_not_at_the_commas_inside_values():
    assert setting_parts("style_layers=relu1_1:0.5,relu3_1:2,relu5_1:1,init=noise") == [
        "style_layers=relu1_1:0.5,relu3_1:2,relu5_1:1", "init=noise"]
    assert setting_parts("scales=32,48,style_weight=10") == ["scales=32,48", "style_weight=10"]
    assert setting_parts("style_weight=10") == ["style_weight=10"]
    assert setting_parts("") == []


def test_two_sweeps_of_one_pair_each_stay_together_in_the_order_written():
    # One entry sweeps style_weight, another tv_weight: sorted by style_weight
    # alone, the tv_weight points sat inside the style_weight strip, at its default 5.
    plain = _job("", style_weight=5.0, tv_weight=0.0)
    by_style = [_job(f"style_weight={w}", style_weight=float(w)) for w in (25, 1, 10)]
    by_tv = [_job(f"tv_weight={t}", tv_weight=t) for t in (0.001, 1e6, 0.5)]
    variants, _ = order_variants(_examples(plain, *by_style, *by_tv))
    assert variants == ["style_weight=1", "", "style_weight=10", "style_weight=25",
                        "tv_weight=0.001", "tv_weight=0.5", "tv_weight=1000000.0"]
