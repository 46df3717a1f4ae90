"""RenderSettings: validation names the field, presets, schedules and batch signatures."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from nst_engine.engine import stage_sizes
from nst_engine.errors import SettingsError
from nst_engine.settings import PRESETS, RenderSettings, batch_signature, preset


def test_whole_sizes_in_scales_may_be_written_as_floats():
    assert RenderSettings().with_overrides(scales=[3.2e1, 64.0]).scales == (32, 64)
    assert RenderSettings().with_overrides(scales=[32.0, 64]) == RenderSettings().with_overrides(scales=[32, 64])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"size": 16}, "size"),
        ({"size": 9000}, "size"),
        ({"size": 64.5}, "size"),  # 64.0 is 64 (`size: 6.4e1`)
        ({"size": True}, "size"),
        ({"iterations": 0}, "iterations"),
        ({"content_weight": -1}, "content_weight"),
        ({"tv_weight": float("nan")}, "tv_weight"),
        ({"style_weight": "5"}, "style_weight"),
        ({"content_weight": 0, "style_weight": 0}, "style_weight"),
        ({"style_layers": {"relu9_9": 1.0}}, "style_layers"),
        ({"style_layers": []}, "style_layers"),
        ({"content_layers": {"relu4_2": -1.0}}, "content_layers"),
        ({"pooling": "min"}, "pooling"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"precision": "fp16"}, "precision"),
        ({"init": ""}, "init"),
        ({"style_scale": 10}, "style_scale"),
        ({"scales": [16]}, "scales"),
        ({"size": 256, "scales": [512]}, "scales"),
        ({"style_blend": [1, -1]}, "style_blend"),
        ({"style_blend": [0, 0]}, "style_blend"),
        ({"lbfgs_history": 0}, "lbfgs_history"),
        ({"colour": True}, "colour"),
        # YAML gives real booleans: text or numbers there are mistakes ("no" is truthy).
        ({"preserve_color": "no"}, "preserve_color"),
        ({"preserve_color": 0}, "preserve_color"),
        ({"upscale": 1}, "upscale"),
        ({"style_weight": True}, "style_weight"),
        ({"style_layers": {"relu1_1": True}}, "style_layers"),
        ({"content_layers": {"relu4_2": "1"}}, "content_layers"),
        ({"style_blend": [True, 1]}, "style_blend"),
        ({"style_blend": 5}, "style_blend"),
        ({"style_blend": [float("inf"), 1]}, "style_blend"),  # inf / inf: a NaN weight
        ({"scales": 256}, "scales"),
        ({"scales": [64, 32]}, "scales"),
        ({"scales": [32, 32]}, "scales"),
        ({"scales": [32, 64.5]}, "scales"),  # [32, 64.0] is [32, 64]
    ],
)
def test_a_bad_value_names_its_field(changes, field):
    with pytest.raises(SettingsError) as error:
        RenderSettings().with_overrides(**changes)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")


ODD_VALUES = [True, "no", 0, 1.5, None, [], [True], ["a"], [[1, 2, 3]], {}, {"relu1_1": True}, {1: 2}, [[]], [{}]]


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(RenderSettings)])
def test_an_odd_shape_is_a_settings_error_not_a_crash(name):
    # The manifest reports SettingsError on its line; a TypeError from deep
    # inside would only say "cannot use this value".
    for value in ODD_VALUES:
        try:
            RenderSettings(size=64).with_overrides(**{name: value})
        except SettingsError as error:
            assert error.field == name
            assert "\n" not in str(error)


def test_the_defaults_and_yaml_shaped_overrides_are_accepted():
    settings = RenderSettings().with_overrides(
        size=64, content_weight=2, style_layers={"relu1_1": 1, "relu3_1": 0.5}, scales=[32], style_blend=[1, 3]
    )
    assert settings.style_layers == (("relu1_1", 1.0), ("relu3_1", 0.5))
    assert settings.scales == (32,)
    assert settings.blend(2) == (0.25, 0.75)
    assert RenderSettings.from_dict(settings.to_dict()) == settings
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert hash(settings) == hash(RenderSettings.from_dict(settings.to_dict()))


def test_a_list_of_layers_weighs_each_1_and_is_the_same_setting_as_the_mapping():
    listed = RenderSettings().with_overrides(style_layers=["relu1_1", "relu2_1"], content_layers=["relu4_2"])
    mapped = RenderSettings().with_overrides(style_layers={"relu1_1": 1, "relu2_1": 1.0}, content_layers={"relu4_2": 1})
    assert listed == mapped and listed.to_dict() == mapped.to_dict()  # one job id, however written
    assert listed.content_layers == RenderSettings().content_layers


def test_blend_checks_the_number_of_styles():
    assert RenderSettings().blend(4) == (0.25,) * 4
    with pytest.raises(SettingsError) as error:
        RenderSettings(style_blend=(1.0, 2.0)).blend(3)
    assert error.value.field == "style_blend" and "2 weights" in str(error.value)


def test_presets():
    assert {"preview", "gatys"} <= set(PRESETS)
    assert preset("preview").size == 256 and preset("preview").iterations == 100
    assert preset("gatys") == RenderSettings(size=512, iterations=500)
    with pytest.raises(SettingsError) as error:
        preset("nope")
    assert error.value.field == "preset"


@pytest.mark.parametrize(
    ("size", "scales", "schedule"),
    [
        (256, (), (256,)),
        (512, (), (512,)),
        (1024, (), (512, 1024)),
        (2048, (), (512, 1024, 2048)),
        (600, (), (300, 600)),
        (64, (32, 64), (32, 64)),
        (64, (32,), (32, 64)),
        (1024, (256, 1024), (256, 1024)),
    ],
)
def test_schedule_goes_coarse_to_fine_above_512(size, scales, schedule):
    assert RenderSettings(size=size, scales=scales).schedule() == schedule


def test_batch_signature_ignores_per_image_settings_only():
    base = RenderSettings(size=64)
    for changes in ({"style_weight": 1.0}, {"seed": 9}, {"init": "noise"}, {"style_blend": (1.0, 2.0)}):
        assert batch_signature(base.with_overrides(**changes)) == batch_signature(base), changes
    for changes in ({"size": 128}, {"iterations": 7}, {"optimizer": "adam"}, {"weights": "x.pth"}):
        assert batch_signature(base.with_overrides(**changes)) != batch_signature(base), changes


def test_stage_sizes_never_upscale_unless_asked():
    settings = RenderSettings(size=64, scales=(32, 64))
    # 128×85 content: both stages shrink it, keeping the aspect ratio.
    assert stage_sizes(settings, (128, 85)) == [(32, (32, 21)), (64, (64, 43))]
    # A 48 px content is not enlarged to 64: the last stage is its own size.
    assert stage_sizes(settings, (48, 30)) == [(32, (32, 20)), (48, (48, 30))]
    assert stage_sizes(settings.with_overrides(upscale=True), (48, 30)) == [
        (32, (32, 20)),
        (64, (64, 40)),
    ]
    assert stage_sizes(RenderSettings(size=64), (20, 40)) == [(40, (20, 40))]


def test_the_stages_never_pass_the_photos_own_size_unless_upscale():
    settings = RenderSettings(size=2048)  # 512 → 1024 → 2048
    assert settings.sides_for(451) == (451,)
    assert settings.sides_for(4000) == (512, 1024, 2048)
    assert RenderSettings(size=2048, upscale=True).sides_for(451) == (512, 1024, 2048)


@pytest.mark.parametrize("size", [512, 600, 1024, 2048, 5000])
def test_a_smaller_photo_gets_the_schedule_of_the_size_it_renders_at(size):
    # The automatic coarse-to-fine schedule follows the side really rendered: a
    # 451 px photo is one stage under any larger size (it was 300 → 451 under
    # 600, and 312 → 451 under 5000), and a 1500 px one halves from 1500.
    assert RenderSettings(size=size).sides_for(451) == (451,)
    if size >= 1500:
        assert RenderSettings(size=size).sides_for(1500) == RenderSettings(size=1500).schedule() == (375, 750, 1500)


def test_explicit_scales_are_kept_below_the_photos_own_size():
    settings = RenderSettings(size=1024, scales=(256, 512))
    assert settings.sides_for(2000) == (256, 512, 1024)
    assert settings.sides_for(700) == (256, 512, 700)
    assert settings.sides_for(400) == (256, 400)
