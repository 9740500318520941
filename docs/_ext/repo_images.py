"""An MkDocs hook: images that a page takes from the repository outside docs/ are published with the site.

The pages link images by their path in the repository (``![...](../benchmarks/bench.png)`` from
docs/speed.md), so that the same Markdown shows them on GitHub. MkDocs only publishes what is inside
docs/, and a strict build fails on a link that leaves it; this hook copies each such image into the
site under ``repo/<its path in the repository>`` and points the page's link there. Links that are not
images are left alone: a page must not link a repository file the site does not have (MkDocs reports it).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def on_page_markdown(markdown: str, *, page: Page, config: Any, files: Files) -> str:
    docs = Path(config["docs_dir"]).resolve()
    repo = docs.parent
    page_dir = (docs / page.file.src_uri).parent

    def publish(match: re.Match[str]) -> str:
        target = match.group("target")
        if "://" in target:
            return match.group(0)
        source = (page_dir / target).resolve()
        if source.is_relative_to(docs) or not source.is_relative_to(repo) or not source.is_file():
            return match.group(0)  # MkDocs checks links inside docs/ itself
        uri = "repo/" + source.relative_to(repo).as_posix()
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(source)))
        link = posixpath.relpath(uri, posixpath.dirname(page.file.src_uri) or ".")
        return f"![{match.group('alt')}]({link})"

    return _IMAGE.sub(publish, markdown)
