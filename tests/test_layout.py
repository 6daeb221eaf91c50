"""The layout's rules, so that they cannot rot quietly: functions short enough to see whole, pyspark's private
py4j handles in one module only, and the layers of pyproject.toml's import-linter contracts kept."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "sparkify")
MAX_FUNCTION_LINES = 60
PRIVATE_PY4J = re.compile(r"\._(jvm|jsc|jsparkSession|gateway|jdf|jconf)\b")
JVM_MODULE = os.path.join(PACKAGE, "platform", "jvm.py")


def modules():
    for folder, dirs, names in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        yield from (os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))


def test_every_function_fits_on_a_screen():
    long = []
    for path in modules():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_only_platform_jvm_reaches_into_private_py4j_handles():
    found = []
    for path in modules():
        if path == JVM_MODULE:
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if PRIVATE_PY4J.search(line.split("#")[0]):
                    found.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert not found, found
    with open(JVM_MODULE, encoding="utf-8") as handle:
        assert PRIVATE_PY4J.search(handle.read())  # the rule above looks for what this module holds


def test_the_layers_hold():
    linter = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    run = subprocess.run([linter], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in run.stdout
