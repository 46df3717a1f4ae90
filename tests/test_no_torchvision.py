"""No project code imports torchvision (DESIGN: it fails at import on the CPU
torch build this project pins). The 'torchvision' weight source is a file
layout read with torch alone, so the name may appear in strings, never in an
import."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("nst_engine", "pipeline", "bench", "tests", "docs")


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            # importlib.import_module("torchvision") and __import__("torchvision")
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.args[0].value


def test_no_source_file_imports_torchvision():
    files = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50  # the walk found the project
    offenders = [
        str(path.relative_to(REPO))
        for path in files
        if any(module.split(".")[0] == "torchvision"
               for module in _imported_modules(ast.parse(path.read_text(), filename=str(path))))
    ]
    assert offenders == []


def test_the_check_sees_each_form_of_import():
    for source in ("import torchvision", "from torchvision.models import vgg19",
                   "import importlib\nimportlib.import_module('torchvision')", "__import__('torchvision.ops')"):
        assert any(m.split(".")[0] == "torchvision" for m in _imported_modules(ast.parse(source))), source
