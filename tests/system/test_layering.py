"""The layering the design document promises (docs/design.md, sections 1 and 7): no include or import runs
back up the layers.

C++: csrc/rnnfast/ is layered core < cells, gemm < step, reduced < kernels, layer < stepper < rnnfast.hpp < model <
capi; a file may include its own folder's headers and those of lower layers only, and core/ only core/. The C API's
header rnnfast.h stands apart: plain C, it includes no header of the library, and capi/ (which implements it) is the
only part of the library that includes it. src/ (the binding) sits above all of csrc/ and csrc/ never includes it. Python: the package's import graph has no cycle (a
module that imports another is above it), counting imports made inside functions too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc" / "rnnfast"
PACKAGE = ROOT / "python" / "rnnfast"

# The layer of each folder of csrc/rnnfast ("" for the C++ umbrella header rnnfast.hpp).
CPP_LAYERS = {"core": 0, "cells": 1, "gemm": 1, "step": 2, "reduced": 2, "kernels": 3, "layer": 3, "stepper": 4, "": 5,
              "model": 6, "capi": 7}
C_API_HEADER = "rnnfast/rnnfast.h"

if not CSRC.is_dir() or not PACKAGE.is_dir():
    pytest.skip("needs a source checkout", allow_module_level=True)


def folder_of(path: Path) -> str:
    rel = path.relative_to(CSRC)
    return rel.parts[0] if len(rel.parts) > 1 else ""


def cpp_sources() -> list[Path]:
    return sorted(p for p in CSRC.rglob("*") if p.suffix in (".h", ".cpp"))


def test_every_csrc_folder_has_a_layer():
    assert {folder_of(p) for p in cpp_sources()} <= set(CPP_LAYERS), "a new folder needs its place in CPP_LAYERS"


def test_no_include_runs_up_the_layers():
    upward = []
    for path in cpp_sources():
        here = folder_of(path)
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = m.group(1)
            if target == C_API_HEADER:
                if here != "capi":
                    upward.append(f"{path.relative_to(ROOT)}:{line_no} ({here}) includes the C API's header")
                continue
            if not target.startswith("rnnfast/"):
                target_folder = here  # a relative include: the same folder (kernels' impl headers)
                assert (path.parent / target).exists(), f"{path}:{line_no}: {target} not found beside it"
            else:
                parts = Path(target).parts[1:]
                target_folder = parts[0] if len(parts) > 1 else ""
            allowed = target_folder == here or CPP_LAYERS[target_folder] < CPP_LAYERS[here]
            if here == "core":
                allowed = target_folder == "core"
            if not allowed:
                upward.append(f"{path.relative_to(ROOT)}:{line_no} ({here}) includes {m.group(1)} ({target_folder})")
    assert not upward, "includes that run up the layers:\n" + "\n".join(upward)


def test_the_c_api_header_includes_only_standard_c_headers():
    includes = re.findall(r'^\s*#\s*include\s+(\S+)', (CSRC / "rnnfast.h").read_text(), re.MULTILINE)
    assert includes and all(i in ("<math.h>", "<stddef.h>", "<stdint.h>") for i in includes), includes


def test_csrc_never_includes_python_or_the_binding():
    for path in cpp_sources():
        text = path.read_text()
        assert "pybind11" not in text and "Python.h" not in text, f"{path} mentions Python headers"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """The package modules `path` imports, anywhere in it (resolved to module names)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "rnnfast"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "rnnfast":
                continue
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import x` names a module
    return found


def test_the_package_imports_have_no_cycle():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # Importing a submodule runs its package's __init__ first; the package itself is not an edge.
        targets = {t for t in imports_of(path, name) if t in modules and t != name}
        graph[name] = {t for t in targets if not name.startswith(t + ".") and t != "rnnfast"}
    # The top-level package imports the public modules; a module importing `rnnfast` itself (the
    # command-line tools and examples, as clients of the API) sits above it and is fine.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
