"""``ray-syncer crd``: print the KRMSyncer CustomResourceDefinition.

The CRD's one source of truth is the package data file
``ray_syncer/data/krmsyncer.yaml`` (shipped in the wheel, so an installed
operator can print exactly the schema it was built against); ``crds/krmsyncer.yaml``
is a byte-identical copy that a test keeps in step. ``load_crd()`` is what the
operator, the in-memory test server and the tests use to install or inspect it.

Two descriptions restate what the code decides, so they are generated from it (by
tests/api/crd_descriptions.py, as this module's floor may not import engine/ or kube/):
``spec.rules`` lists what a glob never expands to (``kube.discovery.GLOB_EXCLUDED``) and
``spec.rules[].namespaces`` names the namespaces an unset list leaves out
(``engine.transform.SYSTEM_NAMESPACES``). ``make crd`` (hack/gen-crd.py) writes them into the
file and its copies; tests/api/test_crd.py fails when the file says anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
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
