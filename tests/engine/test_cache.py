"""Style-target cache: memory -> disk -> compute, damaged entries, concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from engine_helpers import tiny
from file_limits import file_size_limit

from nst_engine import targets as targets_module
from nst_engine.cache_location import default_cache_dir
from nst_engine.engine import Engine
from nst_engine.targets import StyleTargetCache, target_key

LAYERS = ("relu1_1", "relu2_1")
CPU = torch.device("cpu")


class Compute:
    """A stand-in for the style network that counts its runs."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.grams = {"relu1_1": torch.rand(4, 4, generator=g), "relu2_1": torch.rand(8, 8, generator=g)}
        self.runs = 0

    def __call__(self) -> dict[str, torch.Tensor]:
        self.runs += 1
        return self.grams


def entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "style-targets").rglob("*.pt"))


def test_memory_then_disk_then_compute(tmp_path):
    compute = Compute()
    first = StyleTargetCache(tmp_path)
    got = first.get("ab" * 32, LAYERS, CPU, compute)
    assert (first.misses, first.computed, first.hits, compute.runs) == (1, 1, 0, 1)
    assert all(torch.equal(got[k], compute.grams[k]) for k in LAYERS)
    assert [p.name for p in entries(tmp_path)] == ["ab" * 32 + ".pt"]

    first.get("ab" * 32, LAYERS, CPU, compute)  # memory
    second = StyleTargetCache(tmp_path)
    again = second.get("ab" * 32, LAYERS, CPU, compute)  # disk
    assert (first.hits, second.hits, second.computed, compute.runs) == (1, 1, 0, 1)
    assert all(torch.equal(again[k], compute.grams[k]) for k in LAYERS)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"not a torch file at all"), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: torch.save({"relu1_1": torch.zeros(4, 4)}, p), id="missing-layer"),
        pytest.param(lambda p: torch.save({k: torch.full((2, 2), float("nan")) for k in LAYERS}, p), id="nan"),
    ],
)
def test_a_damaged_entry_is_counted_dropped_and_recomputed(tmp_path, damage):
    compute = Compute()
    StyleTargetCache(tmp_path).get("cd" * 32, LAYERS, CPU, compute)
    (path,) = entries(tmp_path)
    damage(path)
    cache = StyleTargetCache(tmp_path)
    got = cache.get("cd" * 32, LAYERS, CPU, compute)
    assert (cache.corrupt_entries, cache.computed, compute.runs) == (1, 1, 2)
    assert all(torch.equal(got[k], compute.grams[k]) for k in LAYERS)
    # Rewritten: the next reader finds a good entry.
    fresh = StyleTargetCache(tmp_path)
    fresh.get("cd" * 32, LAYERS, CPU, compute)
    assert (fresh.hits, fresh.corrupt_entries, compute.runs) == (1, 0, 2)


def test_concurrent_writers_of_one_key_leave_a_loadable_entry(tmp_path):
    writers = [StyleTargetCache(tmp_path) for _ in range(6)]
    grams = Compute().grams
    barrier = threading.Barrier(len(writers))

    def write(cache: StyleTargetCache) -> None:
        barrier.wait()
        for _ in range(5):
            cache._write_disk("ef" * 32, grams)

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = list((tmp_path / "style-targets").rglob("*"))
    assert [p.name for p in files if p.is_file()] == ["ef" * 32 + ".pt"]  # no temp files left
    reader = StyleTargetCache(tmp_path)
    got = reader._read_disk("ef" * 32, LAYERS)
    assert got is not None and reader.corrupt_entries == 0
    assert all(torch.equal(got[k], grams[k]) for k in LAYERS)


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(targets_module, "MEMORY_ENTRIES", 2)
    cache, compute = StyleTargetCache(None), Compute()
    for key in ("k1", "k2", "k1", "k3", "k1", "k2"):
        cache.get(key, LAYERS, CPU, compute)
    # k1 stays (recently used), k2 is evicted by k3 and computed again.
    assert (cache.hits, cache.computed) == (2, 4)


def test_an_unwritable_cache_directory_does_not_fail(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache, compute = StyleTargetCache(blocker), Compute()
    cache.get("k", LAYERS, CPU, compute)
    cache.get("k", LAYERS, CPU, compute)
    assert (cache.computed, cache.hits) == (1, 1)


def test_a_full_disk_does_not_fail_the_render(tmp_path):
    # Writing a tensor of this size to a file, torch.save reports the failed
    # write as a RuntimeError from its zip writer, not as an OSError.
    cache, compute = StyleTargetCache(tmp_path), Compute()
    compute.grams = {layer: torch.rand(64, 64) for layer in LAYERS}
    with file_size_limit(1000):  # the entry is ~33 kB
        cache.get("k", LAYERS, CPU, compute)
    cache.get("k", LAYERS, CPU, compute)
    assert (cache.computed, cache.hits) == (1, 1)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no entry, no temporary file


def test_clear_and_disk_usage(tmp_path):
    cache = StyleTargetCache(tmp_path)
    for key in ("aa" * 32, "bb" * 32):
        cache.get(key, LAYERS, CPU, Compute())
    count, size, broken = cache.disk_usage()
    assert count == 2 and size > 0 and broken == 0
    # One entry cut short, as a full disk or a copy cut off leaves it: not whole.
    entry = sorted(tmp_path.rglob("*.pt"))[0]
    entry.write_bytes(entry.read_bytes()[: size // 4])
    assert cache.disk_usage()[::2] == (2, 1)
    # A writer killed mid-write leaves its temp file: not an entry, and clear removes it.
    (entry.parent / ".tmp-k1l2m3.pt").write_bytes(b"PK\x03\x04 half")
    assert cache.disk_usage()[::2] == (2, 1)
    assert cache.clear() == 2 and cache.disk_usage() == (0, 0, 0)
    assert list(tmp_path.rglob("*.pt")) == []


def test_the_key_covers_everything_the_grams_depend_on():
    args = dict(
        image_digest="d", size=(32, 24), weights_identity="caffe:x",
        layers=("relu1_1", "relu2_1"), pooling="max", precision="fp32",
    )  # fmt: skip
    base = target_key(**args)
    assert target_key(**{**args, "layers": ("relu2_1", "relu1_1")}) == base  # order is irrelevant
    for change in (
        {"image_digest": "e"}, {"size": (24, 32)}, {"weights_identity": "file:y"},
        {"layers": ("relu1_1",)}, {"pooling": "avg"}, {"precision": "bf16"},
    ):  # fmt: skip
        assert target_key(**{**args, **change}) != base, change


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "nst"))
    assert default_cache_dir() == tmp_path / "nst"
    monkeypatch.delenv("NST_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "nst"
    assert Engine("cpu", cache_dir=None).cache.directory is None


def test_a_cache_folder_that_cannot_be_written_is_found_by_trying(tmp_path):
    from nst_engine.cache_location import cache_problem

    assert cache_problem(tmp_path / "fresh") is None and (tmp_path / "fresh" / "style-targets").is_dir()
    assert list((tmp_path / "fresh" / "style-targets").iterdir()) == []  # the probe leaves nothing
    (tmp_path / "a_file").write_text("x")
    assert cache_problem(tmp_path / "a_file" / "nst") == "Not a directory"


# -- through the engine, with the real network ---------------------------------------------
@pytest.mark.slow
def test_a_second_render_and_a_second_engine_reuse_the_style_targets(tmp_path, content, starry):
    settings = tiny(iterations=2)
    first = Engine("cpu", cache_dir=tmp_path)
    one = first.render(content, [starry], settings)
    assert (first.cache.computed, one.stats.cache_misses, one.stats.cache_hits) == (1, 1, 0)
    two = first.render(content, [starry], settings.with_overrides(style_weight=2.0))
    assert (first.cache.computed, first.cache.hits, two.stats.cache_hits, two.stats.cache_misses) == (1, 1, 1, 0)
    assert len(entries(tmp_path)) == 1

    second = Engine("cpu", cache_dir=tmp_path)
    three = second.render(content, [starry], settings)
    assert (second.cache.computed, second.cache.hits, three.stats.cache_hits) == (0, 1, 1)
    # Targets read back from disk give the very same pixels as computed ones.
    assert three.image.tobytes() == one.image.tobytes()


@pytest.mark.slow
def test_a_corrupt_entry_is_recomputed_and_the_render_succeeds(tmp_path, content, starry):
    settings = tiny(iterations=2)
    good = Engine("cpu", cache_dir=tmp_path).render(content, [starry], settings)
    (path,) = entries(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    engine = Engine("cpu", cache_dir=tmp_path)
    result = engine.render(content, [starry], settings)
    assert (engine.cache.corrupt_entries, engine.cache.computed) == (1, 1)
    assert result.stats.cache_misses == 1
    assert result.image.tobytes() == good.image.tobytes()
    assert torch.load(path, weights_only=True).keys() == {name for name, _ in settings.style_layers}
