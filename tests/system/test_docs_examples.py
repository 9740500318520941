"""Every Python example of README.md and the docs pages runs.

Each page's ```python blocks run in order in one namespace (a fresh one per page), in a temporary working
directory, so a page's examples may build on each other the way a reader types them in. A block that
cannot run in a test (a file only the user has, a long training run) carries an HTML comment on the line
before its fence,

    <!-- docs-test: skip (the reason) -->

and is reported as a skip of its own with that reason; the page's other blocks run. A block importing a
module that is not installed (torch, keras, onnx, onnxruntime) skips the rest of its page through
pytest.importorskip, decided from the block's import lines; so does a converter's ImportError for one of
those frameworks (to_onnx needs onnx without the example importing it). Fragments that are not Python
(shell commands, output) are fenced with other languages and are not run.

An example fails the test when it raises. Its comments showing results are kept true by hand (and the
examples assert nothing): what this test guarantees is that every example runs as written.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import rnnfast

os.environ.setdefault("KERAS_BACKEND", "torch")  # as the other tests: before anything imports keras

REPO = Path(__file__).resolve().parents[2]  # tests/system/ -> the repository
if not (REPO / "docs").is_dir() or not (REPO / "README.md").is_file():
    pytest.skip("needs a source checkout (README.md and docs/)", allow_module_level=True)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

# The frameworks the converters import when called: missing, they skip the rest of a page rather than fail it.
OPTIONAL_FRAMEWORKS = {"torch", "keras", "onnx", "onnxruntime"}
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # the page's path from the repository root
    line: int  # the line of the opening fence, 1-based
    source: str
    skip: str | None  # the reason given by a docs-test: skip comment, None to run


def python_blocks(path: Path, name: str = "") -> list[Block]:
    """The ```python blocks of a Markdown page (called ``name`` in messages), in order, with their skip comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        start = i
        i += 1
        body = []
        while i < len(lines) and not (lines[i].strip().startswith(fence) and lines[i].strip().strip(fence[0]) == ""):
            body.append(lines[i][len(m["indent"]):] if lines[i].startswith(m["indent"]) else lines[i])
            i += 1
        i += 1  # past the closing fence
        if info.split()[:1] not in (["python"], ["py"]):
            continue
        prev = lines[start - 1] if start > 0 else ""
        skip = _SKIP.match(prev)
        if "docs-test" in prev and not skip:
            raise ValueError(f"{path}:{start}: a docs-test comment not of the form '<!-- docs-test: skip (reason) -->'")
        blocks.append(Block(name or path.name, start + 1, "\n".join(body) + "\n", skip["reason"] if skip else None))
    return blocks


def imported_modules(source: str) -> list[str]:
    """The top-level modules a block's import lines name (``import a.b``, ``from a.b import c``: ``a``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module.split(".")[0])
    return list(dict.fromkeys(names))


def missing_framework(error: BaseException) -> str | None:
    """The optional framework whose absence caused ``error`` (an ImportError, or one raised from it), else None."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and (seen.name or "").split(".")[0] in OPTIONAL_FRAMEWORKS:
            return seen.name
        seen = seen.__cause__ or seen.__context__
    return None


BLOCKS = {str(p.relative_to(REPO)): python_blocks(p, str(p.relative_to(REPO))) for p in PAGES}
PAGES_WITH_EXAMPLES = [page for page, blocks in BLOCKS.items() if any(b.skip is None for b in blocks)]
SKIPPED = [b for blocks in BLOCKS.values() for b in blocks if b.skip is not None]


@pytest.fixture
def docs_sandbox(tmp_path, monkeypatch):
    """A temporary working directory, and the thread count put back after the page (scale.md changes it)."""
    monkeypatch.chdir(tmp_path)
    threads = rnnfast.get_num_threads()
    yield tmp_path
    rnnfast.set_num_threads(threads)


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_page_examples_run(page, docs_sandbox):
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    for block in BLOCKS[page]:
        if block.skip is not None:
            continue  # reported by test_skipped_example
        for module in imported_modules(block.source):
            pytest.importorskip(module, reason=f"{page}:{block.line} imports {module}, which is not installed")
        # Blank lines before the source, so that a traceback names the page's own line numbers
        code = compile("\n" * block.line + block.source, str(REPO / page), "exec")
        try:
            exec(code, namespace)  # noqa: S102 - the documentation's own examples
        except Exception as e:
            missing = missing_framework(e)
            if missing:  # a converter imports its framework when called (to_onnx needs onnx, the block need not)
                pytest.skip(f"{page}:{block.line} needs {missing}, which is not installed")
            raise AssertionError(f"the example at {page}:{block.line} raised {type(e).__name__}: {e}") from e


if SKIPPED:  # (no test at all when no block is skipped, rather than an "empty parameter set" skip)
    @pytest.mark.parametrize("block", SKIPPED, ids=[f"{b.page}:{b.line}" for b in SKIPPED])
    def test_skipped_example(block):
        compile(block.source, f"{block.page}:{block.line}", "exec")  # it is Python, at least
        pytest.skip(f"{block.page}:{block.line}: {block.skip}")


def test_the_pages_have_examples():
    """The extraction finds the examples (a change of fence style would otherwise pass silently)."""
    assert "README.md" in PAGES_WITH_EXAMPLES
    assert "docs/getting-started.md" in PAGES_WITH_EXAMPLES
    assert sum(len(blocks) for blocks in BLOCKS.values()) >= 20


def test_extraction_of_blocks_and_skip_comments(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```python\na = 1\n```\n\n```bash\nls\n```\n\n"
        "<!-- docs-test: skip (needs the user's recording.wav) -->\n```python\nb = load('recording.wav')\n```\n\n"
        "````py\nc = '```'\n````\n", encoding="utf-8")
    blocks = python_blocks(page)
    assert [(b.line, b.source, b.skip) for b in blocks] == [
        (3, "a = 1\n", None), (12, "b = load('recording.wav')\n", "needs the user's recording.wav"),
        (16, "c = '```'\n", None)]
    assert imported_modules("import torch.nn as tnn\nfrom onnxruntime.quantization import q\nfrom . import x\n") \
        == ["torch", "onnxruntime"]
