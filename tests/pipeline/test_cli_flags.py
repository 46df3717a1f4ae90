"""Flags that stand in for manifest `run:` keys obey the manifest's own rules:
a bad value is one line and exit code 2 before anything runs, never a
traceback, a wait, or a silent fallback to the manifest's value."""

from __future__ import annotations

import json

import pytest
import yaml
from cli_helpers import explain, nst, result_lines, write_manifest


@pytest.fixture
def manifest(gallery_dir, tmp_path):
    return write_manifest(tmp_path / "m.yaml", [gallery_dir / "content" / "chelsea.jpg"],
                          [gallery_dir / "style" / "night_cafe.jpg"])


def _assert_usage_error(result, expected: str) -> None:
    assert result.returncode == 2, explain(result)
    assert result.stderr == f"nst: {expected}\n", explain(result)


@pytest.mark.parametrize("value", ["-1", "0"])
def test_job_timeout_must_be_positive(manifest, tmp_path, value):
    for flags in ((), ("--dry-run",)):
        result = nst("render", manifest, "--devices", "cpu", "--job-timeout", value, *flags, cwd=tmp_path)
        _assert_usage_error(result, f"--job-timeout: must be greater than 0, got {float(value)!r}")
    assert not (tmp_path / "out").exists()


ADDRESS = "expected an address like 'tcp://host:8786', got "


@pytest.mark.parametrize("value, message", [
    ("foo", ADDRESS + "'foo'"),
    ("bogus://x:1", ADDRESS + "'bogus://x:1' (unknown protocol 'bogus'; expected tcp, tls, ws, wss, ucx)"),
    ("tcp://127.0.0.1:notaport", ADDRESS + "'tcp://127.0.0.1:notaport' (the port must be a number from 1 to 65535)"),
])
def test_cluster_address_is_checked_before_anything_runs(manifest, tmp_path, value, message):
    for flags in ((), ("--dry-run",)):
        # A short timeout: the unchecked address was a traceback after a 40 s wait.
        result = nst("render", manifest, "--cluster", value, *flags, cwd=tmp_path, timeout=30)
        _assert_usage_error(result, f"--cluster: {message}")
    assert not (tmp_path / "out").exists()


def test_devices_and_cluster_together_are_refused(manifest, tmp_path):
    result = nst("render", manifest, "--devices", "cpu", "--cluster", "tcp://127.0.0.1:8786", cwd=tmp_path)
    _assert_usage_error(result, "--devices and --cluster: give one (a cluster's workers use their own devices)")
    assert not (tmp_path / "out").exists()


def test_devices_renders_here_a_manifest_that_names_a_cluster(manifest, tmp_path):
    # A trial run at home of the manifest the cluster runs at night: nothing
    # listens at port 9, so a render that went to the cluster would fail.
    data = yaml.safe_load(manifest.read_text())
    manifest.write_text(yaml.safe_dump({**data, "run": {"cluster": "tcp://127.0.0.1:9"}}))
    result = nst("render", manifest, "--devices", "cpu", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, explain(result)
    assert [r["status"] for r in result_lines(tmp_path / "out")] == ["done"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["devices"] == ["cpu"]
