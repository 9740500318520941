"""A Griffe extension for the documentation site: class docstrings assembled from string constants.

``rnnfast.RNN``, ``LSTM`` and ``GRU`` share the description of their common constructor arguments: each
class body sets ``__doc__ = '''...''' + _CTOR_DOC.format(...)``, with ``_CTOR_DOC`` a module-level string.
Griffe reads the sources without running them, so it sees no docstring there, and the reference would
show the layers without their parameters. This extension evaluates such an assignment when the class is
read: the expression may use string literals, the module's top-level names bound to strings, ``+`` and
``str.format``, nothing else (no builtins, no imports), so it computes exactly what Python computes at
import, and a class whose assignment uses anything more keeps no docstring (and a warning fails the strict
build, rather than the reference silently losing the text).
"""

from __future__ import annotations

import ast
import inspect
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import griffe

_log = logging.getLogger("mkdocs.plugins.rnnfast_docs")


@lru_cache(maxsize=None)
def _module_strings(path: str) -> dict[str, str]:
    """The module's top-level names bound to strings (by assignments evaluable from earlier ones)."""
    names: dict[str, str] = {}
    for stmt in ast.parse(Path(path).read_text(encoding="utf-8")).body:
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            value = _evaluate(stmt.value, names)
            if isinstance(value, str):
                names.update({t.id: value for t in stmt.targets})  # type: ignore[attr-defined]
    return names


def _evaluate(expr: ast.expr, names: dict[str, str]) -> Any:
    """The value of a string expression built from literals, known names, ``+`` and ``.format``; None
    for anything else."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.Name):
        return names.get(expr.id)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left, right = _evaluate(expr.left, names), _evaluate(expr.right, names)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format"
            and not expr.args and all(k.arg for k in expr.keywords)):
        template = _evaluate(expr.func.value, names)
        values = {k.arg: _evaluate(k.value, names) for k in expr.keywords}
        if isinstance(template, str) and all(isinstance(v, str) for v in values.values()):
            return template.format(**values)
    return None


class AssembledDocstrings(griffe.Extension):
    """Gives a class whose body assigns ``__doc__`` the docstring that assignment computes."""

    def on_class_instance(self, *, node: ast.AST | griffe.ObjectNode, cls: griffe.Class,
                          agent: griffe.Visitor | griffe.Inspector, **kwargs: Any) -> None:
        if not isinstance(node, ast.ClassDef) or cls.docstring is not None or cls.filepath is None:
            return
        for stmt in node.body:
            if not (isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__doc__" for t in stmt.targets)):
                continue
            value = _evaluate(stmt.value, _module_strings(str(cls.filepath)))
            if not isinstance(value, str):
                _log.warning("%s: the __doc__ of %s is not built from strings alone", cls.filepath, cls.path)
                return
            cls.docstring = griffe.Docstring(
                inspect.cleandoc(value), lineno=stmt.lineno, endlineno=stmt.end_lineno, parent=cls,
                parser=agent.docstring_parser, parser_options=agent.docstring_options,
            )
            return
