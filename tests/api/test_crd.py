"""The CRD file: one source of truth, a valid CustomResourceDefinition, useful to humans."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ray_syncer import API_GROUP, API_VERSION, KIND, PLURAL
from ray_syncer.api.crd import crd_text, load_crd, openapi_schema
from ray_syncer.cli import main
from tests.api.cases import ROOT
from tests.api.crd_schema import to_json_schema


def test_crds_copy_is_byte_identical_to_the_package_data() -> None:
    packaged = (ROOT / "ray_syncer" / "data" / "krmsyncer.yaml").read_bytes()
    assert (ROOT / "crds" / "krmsyncer.yaml").read_bytes() == packaged, (
        "crds/krmsyncer.yaml drifted: cp ray_syncer/data/krmsyncer.yaml crds/krmsyncer.yaml"
    )
    assert crd_text().encode() == packaged


def test_ray_syncer_crd_prints_the_file() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["crd"]) == 0
    assert out.getvalue() == crd_text()
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["crd", "-o", "json"]) == 0
    assert json.loads(out.getvalue()) == load_crd()


@pytest.mark.parametrize("k8s_version", ["1.28", "1.30", "1.32"])
def test_is_a_valid_custom_resource_definition(k8s_version: str) -> None:
    kubernetes_validate.validate(load_crd(), k8s_version, strict=True)


def test_names_scope_and_subresources() -> None:
    crd = load_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{PLURAL}.{API_GROUP}"
    assert spec["group"] == API_GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == KIND and spec["names"]["plural"] == PLURAL
    assert spec["names"]["shortNames"] == ["krms"]
    [version] = spec["versions"]
    assert version["name"] == API_VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    [version] = load_crd()["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Mode", "Suspended", "Ready", "Synced", "Objects", "RPO", "Age"]
    assert columns["RPO"]["jsonPath"] == ".status.recoveryPointSeconds"
    assert columns["Mode"]["jsonPath"] == ".spec.mode"
    for name in ("Suspended", "Ready", "Synced"):
        assert columns[name]["jsonPath"] == f'.status.conditions[?(@.type=="{name}")].status'
    assert columns["Objects"] == {
        **columns["Objects"],
        "type": "integer",
        "jsonPath": ".status.objects",
    }
    assert columns["Age"]["type"] == "date"


def test_both_spellings_of_each_alias_are_in_the_schema() -> None:
    """Otherwise the API server would prune one of them silently."""
    props = openapi_schema()["properties"]["spec"]["properties"]
    assert {"suspend", "suspended", "destination", "remote"} <= set(props)
    # No defaults on them: a default would make a lone alias "disagree" with it.
    for name in ("suspend", "suspended", "destination", "remote"):
        assert "default" not in props[name]


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        out += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    missing = [
        path
        for path, node in _walk(openapi_schema())
        if path
        and not path.endswith(("[]", "{}"))
        and path != ".metadata"
        and not node.get("description")
    ]
    assert missing == []


def test_schema_is_structural() -> None:
    """Every node has a type; no uniqueItems (forbidden in structural schemas)."""
    for path, node in _walk(openapi_schema()):
        assert "type" in node, f"{path or '<root>'} has no type"
        assert "uniqueItems" not in node, path
        assert not {"anyOf", "oneOf", "allOf", "not", "$ref"} & set(node), path


def test_cel_rules_are_cheap_enough_for_the_api_server() -> None:
    """The server rejects a CRD whose CEL cost estimate is unbounded: bound what rules touch."""
    for path, node in _walk(openapi_schema()):
        if not node.get("x-kubernetes-validations"):
            continue
        if node["type"] == "string":
            assert "maxLength" in node, path
        for prop in node.get("properties", {}).values():
            if prop.get("type") == "array":
                assert "maxItems" in prop, f"{path}: CEL over an unbounded list"


def test_defaults_validate_against_their_own_schema() -> None:
    for path, node in _walk(openapi_schema()):
        if "default" in node:
            jsonschema.validate(node["default"], to_json_schema(node))
            assert path


def test_crd_yaml_parses_to_a_single_document() -> None:
    docs = [d for d in yaml.safe_load_all(crd_text()) if d is not None]
    assert len(docs) == 1


def test_descriptions_that_restate_the_code_are_generated_from_it() -> None:
    # kubectl explain shows these; they must say what the code does (make crd writes them).
    from tests.api.crd_descriptions import (
        namespaces_description,
        regenerated_text,
        rules_description,
    )

    assert regenerated_text(crd_text()) == crd_text(), "stale descriptions: run `make crd`"
    spec = openapi_schema()["properties"]["spec"]["properties"]
    assert spec["rules"]["description"] == rules_description()
    assert spec["rules"]["items"]["properties"]["namespaces"]["description"] == (
        namespaces_description()
    )


def test_the_glob_description_names_every_kind_a_glob_never_expands_to() -> None:
    from ray_syncer.kube.discovery import GLOB_EXCLUDED

    text = openapi_schema()["properties"]["spec"]["properties"]["rules"]["description"]
    for group, kind, _ in GLOB_EXCLUDED:
        named = f"every {group} kind" if kind == "*" else (f"{kind}.{group}" if group else kind)
        assert re.search(rf"(?<![\w.]){re.escape(named)}(?![\w.])", text), named
    for kind in ("Node", "Namespace", "APIService", "CertificateSigningRequest", "flowcontrol"):
        assert kind in text  # the ones issue 23 found missing


def test_the_namespaces_description_names_the_namespaces_unset_leaves_out() -> None:
    from ray_syncer.engine.transform import SYSTEM_NAMESPACES

    text = openapi_schema()["properties"]["spec"]["properties"]["rules"]["items"]["properties"][
        "namespaces"]["description"]
    assert {"kube-system", "kube-public", "kube-node-lease"} == SYSTEM_NAMESPACES
    assert all(ns in text for ns in SYSTEM_NAMESPACES)
    assert "all namespaces" not in text.lower()
