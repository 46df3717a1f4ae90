"""Fixtures for the engine tests: real sample images, the bundled weights, and
engines that never touch the user's cache (~/.cache/nst)."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import sample
from PIL import Image

from nst_engine.engine import Engine
from nst_engine.vgg import load_weights


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny renders gain nothing from intra-op threads, and on a shared 2-core
    machine two spinning OpenMP threads per process made them ~20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def content() -> Image.Image:
    return sample("content", "chelsea")  # 128×85: a cat, lots of edges


@pytest.fixture(scope="session")
def starry() -> Image.Image:
    return sample("style", "starry_night")


@pytest.fixture(scope="session")
def cafe() -> Image.Image:
    return sample("style", "cafe_terrace")


@pytest.fixture(scope="session")
def caffe_weights():
    return load_weights("caffe")


@pytest.fixture(scope="session")
def engine() -> Engine:
    """An fp32 CPU engine without a disk cache, reporting every step."""
    return Engine("cpu", cache_dir=None, progress_every=1)


@pytest.fixture(scope="session")
def engine64() -> Engine:
    """float64 makes batched and single renders comparable to ~1e-12, not fp32 noise."""
    return Engine("cpu", cache_dir=None, dtype=torch.float64)
