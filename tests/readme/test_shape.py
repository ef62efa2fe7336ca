"""The README fits in one sitting, in the order a user needs it; the rest lives in docs/."""

from __future__ import annotations

import re

from tests.readme.blocks import README

REPO = README.parent
ORDER = ["The demo", "Walkthrough: two clusters", "Install on Kubernetes with KubeRay",
         "The API in short", "Architecture", "Limits", "Documentation"]


def test_at_most_350_lines_with_install_demo_walkthrough_and_deploy_in_the_first_150() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 350, len(lines)
    headings = {m[1]: i + 1 for i, line in enumerate(lines) if (m := re.match(r"## (.+)", line))}
    assert list(headings) == ORDER
    assert "pip install" in "\n".join(lines[:150])  # the install
    assert all(headings[h] <= 150 for h in ORDER[:3]), headings


def test_every_docs_page_is_in_the_index() -> None:
    index = (REPO / "docs" / "README.md").read_text()
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md") if p.name != "README.md")
    assert [p for p in pages if f"]({p})" not in index] == []
