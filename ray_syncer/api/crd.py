"""``ray-syncer crd``: print the KRMSyncer CustomResourceDefinition.

The CRD's one source of truth is the package data file
``ray_syncer/data/krmsyncer.yaml`` (shipped in the wheel, so an installed
operator can print exactly the schema it was built against); ``crds/krmsyncer.yaml``
is a byte-identical copy that a test keeps in step. ``load_crd()`` is what the
operator, the in-memory test server and the tests use to install or inspect it.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml prints the file as shipped (pipe it to kubectl apply -f -); json for tooling",
    )


def run(args: argparse.Namespace) -> int:
    if args.output == "json":
        sys.stdout.write(json.dumps(load_crd(), indent=2) + "\n")
    else:
        sys.stdout.write(crd_text())
    return 0
