"""What an image file's header alone can tell (read_header), and which input
sizes a render refuses (check_render_sizes): the checks `nst plan` runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from nst_engine.errors import ImageError, ImageTooSmallError
from nst_engine.image_files import check_render_sizes, read_header
from nst_engine.images import load_image
from nst_engine.settings import RenderSettings


def _header_refusal(path) -> str:
    with pytest.raises(ImageError) as caught:
        read_header(path, name="shown.png")
    return str(caught.value)


def test_read_header_gives_the_stored_size(tmp_path):
    Image.new("RGB", (120, 45)).save(tmp_path / "wide.png")
    assert read_header(tmp_path / "wide.png") == (120, 45)


def test_read_header_refuses_what_load_image_refuses_before_decoding(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("shopping list\n")
    frames = [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue")]
    frames[0].save(tmp_path / "blink.gif", save_all=True, append_images=frames[1:])
    Image.new("1", (9000, 9000)).save(tmp_path / "huge.png")  # 81 MP, over the 64 MP limit
    for name, phrase in [("empty.jpg", "is empty (0 bytes)"), ("notes.jpg", "is not an image PIL can read"),
                         ("blink.gif", "is animated (2 frames)"), ("huge.png", "is 9000×9000 px (81 MP)"),
                         ("missing.png", "no such file 'shown.png'")]:
        message = _header_refusal(tmp_path / name)
        assert message.startswith("shown.png") or "shown.png" in message
        assert phrase in message, (name, message)
        # The plan's reason is the render's reason, word for word.
        if (tmp_path / name).exists():
            with pytest.raises(ImageError) as loading:
                load_image(tmp_path / name, name="shown.png")
            assert str(loading.value) == message


def test_a_truncated_file_passes_the_header_and_fails_only_when_decoded(tmp_path):
    Image.effect_noise((64, 64), 60).convert("RGB").save(tmp_path / "whole.jpg", quality=95)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    assert read_header(tmp_path / "half.jpg") == (64, 64)
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "half.jpg")


def _refused(settings, content, *styles) -> str:
    with pytest.raises(ImageTooSmallError) as caught:
        check_render_sizes(settings, content, list(styles))
    return str(caught.value)


def test_render_sizes_refuse_a_source_smaller_than_the_deepest_layer_needs():
    settings = RenderSettings(size=64)  # default layers reach relu5_1: 16 px
    assert _refused(settings, ("dot.png", (8, 8)), ("s.jpg", (300, 200))) == \
        "dot.png is 8×8 px but must be at least 16×16 px for layer relu5_1"
    assert _refused(settings, ("c.jpg", (300, 200)), ("s.jpg", (300, 200)), ("chip.png", (15, 40))) == \
        "chip.png is 15×40 px but must be at least 16×16 px for layer relu5_1"
    shallow = settings.with_overrides(style_layers={"relu1_1": 1.0, "relu2_1": 1.0}, content_layers={"relu2_2": 1.0})
    check_render_sizes(shallow, ("dot.png", (8, 8)), [("s.jpg", (300, 200))])  # 2 px is enough for relu2_x


def test_render_sizes_refuse_a_panorama_that_scaling_thins_below_the_minimum():
    settings = RenderSettings(size=64)
    # 20 px tall passes as stored, but at 64 px wide it is 1 px tall.
    assert _refused(settings, ("strip.png", (1000, 20)), ("s.jpg", (300, 200))) == \
        "strip.png (scaled to 64 px) is 64×1 px but must be at least 16×16 px for layer relu5_1; " \
        "it needs a size of at least 800"  # 800 px wide keeps it 16 px tall
    # A style is scaled to the stage's style side (style_scale), never up.
    assert _refused(settings.with_overrides(style_scale=0.5), ("c.jpg", (300, 200)), ("band.jpg", (600, 40))) == \
        "band.jpg (scaled to 32 px) is 32×2 px but must be at least 16×16 px for layer relu5_1"
    check_render_sizes(settings, ("c.jpg", (300, 200)), [("small.jpg", (20, 20))])  # kept at 20×20


def test_render_sizes_check_every_stage_of_a_coarse_to_fine_schedule():
    settings = RenderSettings(size=128, scales=(32,))
    # 128×24 is fine at 128 px but 32×6 at the first, 32 px stage.
    assert _refused(settings, ("c.jpg", (512, 96)), ("s.jpg", (300, 200))) == \
        "c.jpg (scaled to 32 px) is 32×6 px but must be at least 16×16 px for layer relu5_1; " \
        "it needs every stage at 86 px or more"
    check_render_sizes(settings.with_overrides(scales=()), ("c.jpg", (512, 96)), [("s.jpg", (300, 200))])


def test_a_painting_too_small_beside_a_small_photo_names_the_photo_as_the_cause():
    # The photo renders at its own 16 px (no upscale), and the painting is scaled to match.
    assert _refused(RenderSettings(size=64), ("tiny.png", (16, 16)), ("starry.jpg", (300, 240))) == \
        "starry.jpg (scaled to 16 px: tiny.png renders at its own 16 px, as upscale is off) is 16×13 px " \
        "but must be at least 16×16 px for layer relu5_1"
    check_render_sizes(RenderSettings(size=64, upscale=True), ("tiny.png", (16, 16)), [("starry.jpg", (300, 240))])


def test_image_files_does_not_import_torch():
    # `nst plan` checks every input through this module; it must not pay for torch.
    code = "import sys, nst_engine.image_files; print('torch' in sys.modules)"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == "False"
