"""Where a render ran, as its stats (and so its sidecar) record it: identical
pixels need the same CPU model and the same number of torch threads, and
"x86_64" names every PC."""

from __future__ import annotations

import platform

import pytest
import torch
from engine_helpers import tiny

from nst_engine import cpu_model
from nst_engine.engine import Engine

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6248   CPU @ 2.50GHz
flags\t\t: fpu vme

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6248   CPU @ 2.50GHz
"""
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"


@pytest.fixture
def fresh_cache():
    cpu_model.cpu_model_name.cache_clear()
    yield
    cpu_model.cpu_model_name.cache_clear()


def test_the_model_name_is_read_from_cpuinfo():
    # The `model` line (a number) is not the name; runs of spaces are squeezed.
    assert cpu_model.model_name_in_cpuinfo(X86_CPUINFO) == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"
    assert cpu_model.model_name_in_cpuinfo(ARM_CPUINFO) is None


def test_without_a_model_name_it_falls_back_to_what_platform_knows(tmp_path, monkeypatch, fresh_cache):
    (tmp_path / "cpuinfo").write_text(ARM_CPUINFO)
    monkeypatch.setattr(cpu_model, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu_model.cpu_model_name() == "aarch64"
    cpu_model.cpu_model_name.cache_clear()
    monkeypatch.setattr(cpu_model, "CPUINFO", tmp_path / "missing")  # not Linux
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert cpu_model.cpu_model_name() == "arm"


def test_a_cpu_engine_is_named_by_its_cpu_model(tmp_path, monkeypatch, fresh_cache):
    (tmp_path / "cpuinfo").write_text(X86_CPUINFO)
    monkeypatch.setattr(cpu_model, "CPUINFO", tmp_path / "cpuinfo")
    assert Engine("cpu", cache_dir=None).device_name == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"


def test_a_render_records_the_torch_threads_it_ran_with(content, starry):
    threads = torch.get_num_threads()  # 1 in the engine tests (conftest)
    torch.set_num_threads(2)
    try:
        result = Engine("cpu", cache_dir=None).render(content, [starry], tiny(iterations=1))
    finally:
        torch.set_num_threads(threads)
    assert result.stats.torch_threads == 2
    assert result.stats.to_dict()["torch_threads"] == 2  # what the worker sends the sidecar
