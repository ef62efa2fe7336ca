"""Every command the README shows is run by a test (or the README says why it cannot be).

Blocks tagged ``<!-- readme-test: TAG -->`` are run literally: ``dev-clusters``, ``walkthrough``
and ``operator`` by tests/readme/test_walkthrough.py, on the dev clusters and on two real control
planes, ``rehearsal`` by the deploy rehearsal
(tests/rehearsal/deployment.py). Every other command must match an entry of ``COVERED``, whose
test file must contain the entry's evidence, or of ``NOT_RUN``, with the reason.
"""

from __future__ import annotations

import re

import pytest

from tests.readme.blocks import README, blocks, command_lines, commands

REPO = README.parent
RUN_LITERALLY = {
    "walkthrough": "tests/readme/test_walkthrough.py",
    "operator": "tests/readme/test_walkthrough.py",
    "dev-clusters": "tests/readme/test_walkthrough.py",
    "rehearsal": "tests/rehearsal/deployment.py",
}
# command pattern -> (file that runs it, text in that file that shows it does)
COVERED: dict[str, tuple[str, str]] = {
    r"make demo": ("tests/readme/test_demo.py", '"make", "-s", "demo"'),
    r"make test": (".ci/run", "make test"),
    r"make image": (".ci/run", "make image"),
    r"python3 -m venv \.venv && \. \.venv/bin/activate": ("Makefile", "-m venv $(VENV)"),
    r"pip install -e \.": ("tests/deploy/test_package.py", '"pip"'),
    r"ray-syncer --help": ("tests/test_cli.py", '["--help"]'),
}
NOT_RUN = {
    r"docker (tag|push) .*": "no registry here; `make image` builds the image the rehearsal runs",
    r"helm .*": "the KubeRay operator is not run; the rehearsal applies its CRD and starts the pods "
                "as its pod builder would (tests/rehearsal/kuberay.py)",
}


def _match(table: dict[str, object], command: str) -> list[str]:
    return [p for p in table if re.fullmatch(p, command)]


def test_every_readme_command_is_run_by_a_test() -> None:
    unaccounted = []
    for tag, command in commands():
        if tag in RUN_LITERALLY:
            continue
        if len(_match(COVERED, command)) + len(_match(NOT_RUN, command)) != 1:
            unaccounted.append(command)
    assert unaccounted == [], "README commands no test runs (tag the block or add to COVERED)"


@pytest.mark.parametrize("pattern", sorted(COVERED))
def test_the_covering_file_runs_it(pattern: str) -> None:
    path, evidence = COVERED[pattern]
    assert evidence in (REPO / path).read_text(), f"{path} no longer runs `{pattern}`"
    assert any(re.fullmatch(pattern, c) for _, c in commands()), f"`{pattern}` left the README"


@pytest.mark.parametrize("tag", sorted(RUN_LITERALLY))
def test_tagged_blocks_exist_and_their_runner_reads_them(tag: str) -> None:
    assert blocks(tag), f"no README block is tagged {tag}"
    assert f'"{tag}"' in (REPO / RUN_LITERALLY[tag]).read_text()


def test_the_scan_splits_commands_and_sees_untagged_ones() -> None:
    text = ("<!-- readme-test: walkthrough -->\n```bash\nkubectl apply -f x \\\n  -f y   # both\n```\n"
            "```bash\n# a comment\nmake demo\nrm -rf /\n```\n```yaml\nkind: X\n```\n")
    assert command_lines("a \\\n   b  # c\n\nd\n") == ["a b", "d"]
    assert commands(text) == [("walkthrough", "kubectl apply -f x -f y"), (None, "make demo"),
                              (None, "rm -rf /")]
    assert _match(COVERED, "rm -rf /") == [] and _match(NOT_RUN, "rm -rf /") == []
