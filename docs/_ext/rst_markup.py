"""A Griffe extension for the documentation site: the reStructuredText markup of rnnfast's docstrings in
Markdown terms.

rnnfast's docstrings are numpydoc docstrings written for Sphinx-style readers (``help()``, IDEs): they
cross-reference with roles (``:class:`LSTM```, ``:func:`~rnnfast.reference.int8_product```), introduce
literal blocks with ``::`` and draw a few simple tables with ``=====`` borders. mkdocstrings renders
docstrings as Markdown, where those would show as raw markup, so before rendering this extension rewrites

- a role into a cross-reference to the object it names (resolved in the scope of the documented object,
  as Sphinx resolves it), rendered as code; an ``optional`` reference, so a name the site does not
  document (a private helper, NumPy) stays plain code instead of failing the strict build;
- ``text::`` into ``text:`` (the indented block after it is already a Markdown code block) and drops a
  ``::`` standing alone;
- a simple table into a fenced plain-text block, which shows its columns aligned as written;
- an asterisk inside a formula in prose (``(L*D, B, H)``) into an escaped one, which Markdown would
  otherwise pair with the next into emphasis (code spans and literal blocks are left as written).

The docstrings in the sources stay as they are; only the site's copy changes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# An inline code span (``code`` or `code`) or a role (:role:`target`, :role:`~target`).
_INLINE = re.compile(r"(?P<role>:(?:class|func|meth|mod|attr|data|obj|exc):`(?P<tilde>~?)(?P<target>[^`]+)`)"
                     r"|``.+?``|`[^`]+`", re.DOTALL)
# An asterisk between characters of a formula, ``D*H`` or ``(L*D, B, H)``, which Markdown would take
# for the start or end of emphasis; ``*emphasis*`` and ``**strong**`` have a space on their outer side.
_PRODUCT = re.compile(r"(?<=[\w)])\*(?=[\w(])")
_TABLE_BORDER = re.compile(r"^\s*=+(?: +=+)+\s*$")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
# The numpydoc sections made of items: their "name : type" lines (at the section's indentation) are
# parsed by Griffe and the type shown as code, so they are left exactly as written.
_ITEM_SECTIONS = {"parameters", "other parameters", "returns", "yields", "receives", "raises", "warns",
                  "attributes", "methods"}


def _identifier(obj: griffe.Object, target: str) -> str:
    """The full path of the object ``target`` names, looked up from ``obj`` (its members, then its
    module's names and imports); ``target`` itself where the lookup fails."""
    if target.startswith("rnnfast."):
        return target
    head, dot, rest = target.lstrip(".").partition(".")
    try:
        return obj.resolve(head) + dot + rest
    except Exception:  # griffe.NameResolutionError, or an alias whose target is outside the package
        return target


def _inline(obj: griffe.Object, line: str) -> str:
    """Prose (lines of it: a code span may go on to the next line): roles to cross-references, formulas'
    asterisks escaped (not in code spans)."""
    out, end = [], 0
    for match in _INLINE.finditer(line):
        out.append(_PRODUCT.sub(r"\\*", line[end : match.start()]))
        if match.group("role"):
            target = match.group("target")
            shown = target.rsplit(".", 1)[-1] if match.group("tilde") else target
            out.append(f'<autoref identifier="{_identifier(obj, target)}" optional><code>{shown}</code></autoref>')
        else:
            out.append(match.group(0))
        end = match.end()
    out.append(_PRODUCT.sub(r"\\*", line[end:]))
    return "".join(out)


def _table_end(lines: list[str], start: int) -> int:
    """The index of a simple table's last border: the first border after ``start`` followed by a blank
    line or the end."""
    end = start + 1
    while end < len(lines) and not (
        _TABLE_BORDER.match(lines[end]) and (end + 1 == len(lines) or not lines[end + 1].strip())
    ):
        end += 1
    return end


def _markdown(obj: griffe.Object, text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    prose: list[str] = []  # prose lines not yet rewritten, taken together
    literal_indent = -1  # while >= 0: inside a literal block opened by a line of that indentation
    items_indent = -1  # while >= 0: inside a section of items, whose item lines have that indentation

    def flush() -> None:
        if prose:
            out.extend(_inline(obj, "\n".join(prose)).split("\n"))
            prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if literal_indent >= 0 and (not line.strip() or indent > literal_indent):
            out.append(line)  # literal text, kept as written
            i += 1
            continue
        literal_indent = -1
        if _UNDERLINE.match(line) and i > 0:
            items_indent = indent if lines[i - 1].strip().lower() in _ITEM_SECTIONS else -1
        elif line.strip() and indent == items_indent:
            flush()
            out.append(line)  # an item's "name : type" line
            i += 1
            continue
        if _TABLE_BORDER.match(line):
            flush()
            end = _table_end(lines, i)
            out += ["", line[:indent] + "```text", *lines[i : end + 1], line[:indent] + "```", ""]
            i = end + 1
            continue
        if line.endswith("::"):
            literal_indent = indent
            prose.append("" if line.strip() == "::" else line[:-1])
            flush()
        else:
            prose.append(line)
        i += 1
    flush()
    return "\n".join(out)


class RstMarkup(griffe.Extension):
    """Rewrites every docstring of a loaded package (see the module's docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._rewrite(pkg)

    def _rewrite(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _markdown(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:  # an alias's target is rewritten where it is defined
                self._rewrite(member)  # type: ignore[arg-type]
