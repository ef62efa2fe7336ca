"""``ray-syncer crd``: print the KRMSyncer CustomResourceDefinition.

The CRD's one source of truth is the package data file
``ray_syncer/data/krmsyncer.yaml`` (shipped in the wheel, so an installed
operator can print exactly the schema it was built against); ``crds/krmsyncer.yaml``
is a byte-identical copy that a test keeps in step. ``load_crd()`` is what the
operator, the in-memory test server and the tests use to install or inspect it.

Two descriptions restate what the code decides, so they are generated from it:
``spec.rules`` lists what a glob never expands to (``kube.discovery.GLOB_EXCLUDED``) and
``spec.rules[].namespaces`` names the namespaces an unset list leaves out
(``engine.transform.SYSTEM_NAMESPACES``). ``make crd`` (hack/gen-crd.py) writes them into the
file and its copies; tests/api/test_crd.py fails when the file says anything else.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import textwrap
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.clikit.output import STRUCTURED, add_output_flag, emit

CRD_RESOURCE = "krmsyncer.yaml"


def crd_text() -> str:
    """The CRD file exactly as shipped (comments included)."""
    path = resources.files("ray_syncer").joinpath("data").joinpath(CRD_RESOURCE)
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _crd_json() -> str:
    return json.dumps(yaml.safe_load(crd_text()))


def load_crd() -> dict[str, Any]:
    """The CRD as a fresh dict (callers may mutate it)."""
    crd: dict[str, Any] = json.loads(_crd_json())
    return crd


def openapi_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version."""
    version = load_crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def rules_description() -> str:
    """``spec.rules``' description, with every kind a glob never expands to."""
    from ray_syncer.kube.discovery import GLOB_EXCLUDED

    names = []
    for group, kind, _ in GLOB_EXCLUDED:
        if kind == "*":
            names.append(f"every {group} kind")
        else:
            names.append(f"{kind}.{group}" if group else kind)
    return (
        'What to sync: at least one group/version/kind, each with optional filters. A "*" in '
        "group, version or kind is a glob expanded through discovery (and re-expanded when CRDs "
        f"appear or go). A glob never expands, in any version, to {', '.join(names)}, nor to kinds "
        "that cannot be listed and watched, nor, when the rule names namespaces, to cluster-scoped "
        "kinds; a rule that names one of them exactly syncs it."
    )


def namespaces_description() -> str:
    """``spec.rules[].namespaces``' description, with the namespaces unset leaves out."""
    from ray_syncer.engine.transform import SYSTEM_NAMESPACES

    left_out = sorted(SYSTEM_NAMESPACES)
    listed = ", ".join(left_out[:-1]) + f" and {left_out[-1]}"
    return (
        "Only objects in these source namespaces. Unset or empty means every namespace except "
        f"{listed}, whose objects are synced only by a rule that names them. Ignored for "
        "cluster-scoped kinds."
    )


GENERATED_DESCRIPTIONS = {
    # The key whose description is generated, with its indentation in the file.
    "                rules:": rules_description,
    "                      namespaces:": namespaces_description,
}


def _literal(text: str, _match: re.Match[str]) -> str:
    return text


def regenerated_text(text: str) -> str:
    """``text`` (the CRD file) with the generated descriptions written in, as folded blocks."""
    for anchor, make in GENERATED_DESCRIPTIONS.items():
        indent = " " * (len(anchor) - len(anchor.lstrip()) + 2)
        block = re.compile(
            rf"^{re.escape(anchor)}\n{indent}description: >-\n(?:{indent}  .*\n)+", re.M
        )
        body = textwrap.fill(make(), width=100, initial_indent=indent + "  ",
                             subsequent_indent=indent + "  ", break_on_hyphens=False,
                             break_long_words=False)
        replacement = f"{anchor}\n{indent}description: >-\n{body}\n"
        # A function, not a template: the text is taken literally (no backslash escapes).
        text, n = block.subn(functools.partial(_literal, replacement), text)
        if n != 1:
            raise ValueError(f"the CRD file should have one {anchor.strip()} description, found {n}")
    return text


EXAMPLES = (
    "ray-syncer crd | kubectl apply --server-side -f -",
    "ray-syncer crd -o json | jq .spec.versions[0].name",
)


def configure(parser: argparse.ArgumentParser) -> None:
    # A CRD is a manifest: no table to show, so only the two manifest formats.
    add_output_flag(
        parser, formats=STRUCTURED, default="yaml",
        help="yaml (default) prints the file as shipped, comments included (pipe it to "
        "kubectl apply -f -); json for tooling",
    )
    describe(parser, examples=EXAMPLES, exit_codes=codes(Exit.OK, Exit.USAGE))


def run(args: argparse.Namespace) -> int:
    if args.output == "json":
        emit(load_crd(), "json")
    else:
        sys.stdout.write(crd_text())
    return Exit.OK
