"""Every relative link and picture in README.md and docs/**/*.md leads to a file that exists, and a link to a heading
(file.md#heading) to a heading that exists, as GitHub makes its anchors."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets and parentheses are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to -."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", FENCE.sub("", path.read_text()), flags=re.MULTILINE)
    return {anchor(heading) for heading in headings}


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:: not ours to check
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    return broken


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere():
    found = {str(path.relative_to(ROOT)): broken_links(path) for path in markdown_files()}
    assert sum(len(links(path)) for path in markdown_files()) > 20, "the link pattern found almost nothing"
    assert {name: broken for name, broken in found.items() if broken} == {}


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path):
    (tmp_path / "guide.md").write_text("# A guide\n\n## Second part\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](guide.md#second-part) [gone](missing.md) ![pic](shot.png) [bad](guide.md#third)\n"
                    "`[not a link](nowhere.md)`\n```\n[code](nowhere.md)\n```\n[web](https://example.org/x)\n")
    assert broken_links(page) == ["missing.md (no such file)", "shot.png (no such file)",
                                  "guide.md#third (no such heading)"]
