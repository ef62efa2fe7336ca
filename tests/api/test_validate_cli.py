"""``ray-syncer validate``: summaries for valid manifests, precise errors and exit 1 otherwise."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml

from ray_syncer.api.parse import parse_krmsyncer
from ray_syncer.api.validate import summarize, validate_files
from ray_syncer.cli import main
from tests.api.cases import EXAMPLES, ROOT


def _run(
    files: list[str], *, output: str = "summary", stdin: str | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = validate_files(
        files,
        output=output,
        out=out,
        err=err,
        stdin=io.StringIO(stdin) if stdin is not None else None,
    )
    return rc, out.getvalue(), err.getvalue()


def test_examples_are_valid() -> None:
    rc, out, err = _run([str(p) for p in EXAMPLES])
    assert rc == 0, out + err
    assert "INVALID" not in out
    assert "KRMSyncer default/configmap-sync: valid" in out


def test_usage_summary_says_what_will_happen() -> None:
    rc, out, _ = _run([str(ROOT / "examples" / "krmsyncer-usage.yaml")])
    assert rc == 0
    assert "push: this cluster is the source" in out
    assert "Secret default/remote-kubeconfig, key 'kubeconfig' (spec.destination)" in out
    assert "suspended:   no" in out
    assert "[0] v1/ConfigMap" in out and "namespaces: default" in out
    assert "conflict Skip, deletion Delete, resync every 10m" in out


def test_secret_is_skipped_and_its_contents_never_printed() -> None:
    rc, out, err = _run([str(ROOT / "examples" / "kubeconfig-secret.yaml")])
    assert rc == 0
    assert "skipped Secret remote-kubeconfig" in out
    assert "REPLACE-ME" not in out + err and "token" not in out + err


def test_invalid_manifest_prints_every_error_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
apiVersion: syncer.gkelabs.io/v1alpha1
kind: KRMSyncer
metadata: {name: good}
spec:
  rules: [{group: "", version: v1, kind: ConfigMap}]
  remote: {clusterConfig: {kubeConfigSecretRef: {name: r}}}
---
apiVersion: syncer.gkelabs.io/v1alpha1
kind: KRMSyncer
metadata: {name: bad}
spec:
  suspend: true
  suspended: false
  rules: [{group: "", version: v1, kind: ""}]
  destination: {clusterConfig: {kubeConfigSecretRef: {name: r}}}
"""
    )
    rc, out, _ = _run([str(bad)])
    assert rc == 1
    assert f"{bad}#1: KRMSyncer -/good: valid" in out
    assert f"{bad}#2: KRMSyncer is INVALID:" in out
    assert "  - spec.rules[0].kind: must not be empty" in out
    assert "  - spec.suspended: disagrees with spec.suspend" in out


def test_unreadable_and_malformed_files_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n")
    rc, _, err = _run([str(tmp_path / "missing.yaml"), str(broken)])
    assert rc == 1
    assert "missing.yaml: cannot read" in err and "broken.yaml: cannot read" in err


def test_json_output_is_the_defaulted_spec_and_parses_again() -> None:
    rc, out, _ = _run([str(ROOT / "examples" / "krmsyncer-documented.yaml")], output="json")
    assert rc == 0
    body = json.loads(out.split("\n", 1)[1])
    assert body["spec"]["resyncPeriod"] == "10m"
    assert (
        body["spec"]["destination"]["clusterConfig"]["kubeConfigSecretRef"]["key"] == "kubeconfig"
    )
    assert parse_krmsyncer(body).spec.suspended_effective is False


def test_stdin_and_lists() -> None:
    doc = yaml.safe_load((ROOT / "examples" / "krmsyncer-pull.yaml").read_text())
    listing = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [doc]})
    rc, out, _ = _run(["-"], stdin=listing)
    assert rc == 0
    assert "-#1.items[0]: KRMSyncer default/pull-from-active: valid" in out
    assert "pull: this cluster is the destination" in out


def test_suspended_summary() -> None:
    syncer = parse_krmsyncer(
        yaml.safe_load((ROOT / "examples" / "krmsyncer-standby.yaml").read_text())
    )
    assert "suspended:   yes (no watches, no writes)" in summarize(syncer)


def test_cli_entry_point(capsys: object) -> None:
    assert main(["validate", str(ROOT / "examples" / "krmsyncer-usage.yaml")]) == 0
