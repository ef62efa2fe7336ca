"""Every repository path the install docs mention exists.

`missing_paths` scans a markdown file for repo-relative paths: tokens that start with one of
the repository's tracked top-level entries (`deploy/...`, `examples/...`, `Dockerfile`, ...),
in prose, backticks or code blocks, plus relative link targets. The lead points it at README.md
too (DOCS below).
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.deploy.manifests import REPO

DOCS = ["README.md", "CHANGELOG.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


@cache
def tracked_roots(repo: Path = REPO) -> frozenset[str]:
    """Top-level names git tracks (so `.venv/` or `dist/` never count as documented paths)."""
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout
        names = {line.split("/", 1)[0] for line in out.splitlines() if line}
    except (OSError, subprocess.CalledProcessError):
        names = {p.name for p in repo.iterdir() if not p.name.startswith((".venv", ".git"))}
    return frozenset(names - {".gitignore"})


def missing_paths(md: Path, *, repo: Path = REPO, roots: frozenset[str] | None = None) -> list[str]:
    roots = roots if roots is not None else tracked_roots(repo)
    text = md.read_text()
    alternatives = "|".join(re.escape(r) for r in sorted(roots, key=len, reverse=True))
    # A root name at a token start (not inside a URL or a longer path), then path characters.
    pattern = re.compile(rf"(?<![\w/.:~-])((?:{alternatives})(?:/[\w.*-]*)*)")
    missing = set()
    for m in pattern.finditer(text):
        token = m.group(1).rstrip(".")
        if "*" in token:
            continue
        if not (repo / token).exists():
            missing.add(token)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:|#", target):
            continue
        if not (md.parent / target.split("#", 1)[0]).exists():
            missing.add(target)
    return sorted(missing)


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_the_docs_reference_exists(doc: str) -> None:
    assert missing_paths(REPO / doc) == []


def test_the_scan_finds_paths_and_reports_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "rbac.yaml").touch()
    (tmp_path / "Dockerfile").touch()
    md = tmp_path / "x.md"
    md.write_text(
        "Apply `deploy/rbac.yaml`, then\n```\nkubectl apply -f deploy/nope.yaml -k deploy/\n```\n"
        "Not paths: https://example.com/deploy/x.yaml, ~/deploy/y, `my-deploy/z`.\n"
        "Build the [Dockerfile](Dockerfile) and see [missing](docs/gone.md).\n"
    )
    found = missing_paths(md, repo=tmp_path, roots=frozenset({"deploy", "Dockerfile"}))
    assert found == ["deploy/nope.yaml", "docs/gone.md"]


def test_the_design_document_cited_everywhere_is_the_one_in_the_repository() -> None:
    # A person with a clone must be able to read what the code cites.
    out = subprocess.run(["git", "grep", "-n", "-I", "-e", "DESIGN.md", "-e", "DESIGN §", "--",
                          ":!tests/deploy/test_docs_paths.py"], cwd=REPO, capture_output=True,
                         text=True)
    assert out.stdout == "", out.stdout
    assert (REPO / "docs" / "design.md").exists()
