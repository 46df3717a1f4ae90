"""The parent process of a render never loads torch (DESIGN: CUDA and fork do not
mix, and a torch-free parent starts fast). Every pipeline module is imported in
a fresh interpreter, found with pkgutil so a new module is covered on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# The seam to the engine (run inside workers only) and commands that never start
# workers, which may load the engine lazily.
ALLOWED = {"pipeline.worker", "pipeline.worker_loop", "pipeline.worker_checkpoints", "pipeline.cache_admin"}

PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys, traceback

    allowed = set(json.loads(sys.argv[1]))
    chain = []

    class WhoImportsTorch:
        # Records the import stack the first time anything asks for torch.
        def find_spec(self, name, path=None, target=None):
            if name == "torch" and not chain:
                chain.extend(line for line in traceback.format_stack()
                             if "<frozen importlib" not in line)
            return None

    sys.meta_path.insert(0, WhoImportsTorch())
    import pipeline

    names = sorted(f"pipeline.{m.name}" for m in pkgutil.iter_modules(pipeline.__path__))
    culprit = None
    for name in names:
        if name in allowed:
            continue
        importlib.import_module(name)
        if "torch" in sys.modules and culprit is None:
            culprit = name
    print(json.dumps({"imported": names, "culprit": culprit, "chain": "".join(chain)}))
""")


def test_pipeline_modules_do_not_import_torch():
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(sorted(ALLOWED))],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["culprit"] is None, (
        f"importing {report['culprit']} loaded torch; import chain:\n{report['chain']}")
    # The walk really covered the package (and the allowed list names real modules).
    assert {"pipeline.cli", "pipeline.run", "pipeline.manifest", "pipeline.local_executor"} <= set(report["imported"])
    assert set(report["imported"]) >= ALLOWED


def test_only_the_worker_seam_writes_torch_code():
    # Modules may reach the engine through pipeline.worker, but torch calls
    # themselves (threads, CUDA memory, device probes) live in nst_engine/ or in
    # that one seam, so the engine/pipeline boundary stays in one file.
    import pathlib
    import re

    package = pathlib.Path(__file__).resolve().parents[2] / "pipeline"
    uses = re.compile(r"^\s*(import torch|from torch)\b", re.MULTILINE)
    writers = sorted(p.name for p in package.glob("*.py") if uses.search(p.read_text(encoding="utf-8")))
    assert writers == ["worker.py"]
