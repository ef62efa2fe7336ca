"""``ray-syncer validate FILE...``: check KRMSyncer manifests before applying them.

Reads multi-document YAML (``-`` is stdin), parses every KRMSyncer with the same
``parse_krmsyncer`` the operator uses, and prints either a readable summary of
what the syncer will do or the precise errors the operator would put in its
``Ready`` condition. Other kinds in the same files (the kubeconfig Secret, say)
are listed as skipped and their contents are never printed. Exit status 1 if
any KRMSyncer is invalid or a file cannot be read. ``-o table`` (or ``wide``)
prints the summary, ``-o yaml|json`` the parsed spec (``clikit.output``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from ray_syncer import API_GROUP, KIND
from ray_syncer.api.models import KRMSyncer, Rule
from ray_syncer.api.parse import SpecError, parse_krmsyncer
from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.clikit.output import STRUCTURED, add_output_flag, emit


@dataclass(frozen=True)
class Document:
    source: str  # "file.yaml#2" (1-based document index)
    body: Any


def read_documents(path: str, *, stdin: TextIO | None = None) -> Iterator[Document]:
    """Every non-empty YAML document in a file; raises OSError / yaml.YAMLError."""
    if path == "-":
        text = (stdin or sys.stdin).read()
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    for i, body in enumerate(yaml.safe_load_all(text), start=1):
        if body is None:
            continue
        kind = body.get("kind") if isinstance(body, dict) else None
        if isinstance(kind, str) and kind.endswith("List") and isinstance(body.get("items"), list):
            for j, item in enumerate(body.get("items") or [], start=1):
                yield Document(f"{path}#{i}.items[{j - 1}]", item)
            continue
        yield Document(f"{path}#{i}", body)


def _is_krmsyncer(body: Any) -> bool:
    if not isinstance(body, dict):
        return True  # not an object at all: report it rather than skip it silently
    api_version = str(body.get("apiVersion", ""))
    return body.get("kind") == KIND or api_version.startswith(API_GROUP + "/")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _rule_line(index: int, rule: Rule) -> str:
    parts = [
        f"[{index}] {rule.gvk}" + ("  (glob, expanded through discovery)" if rule.is_glob else "")
    ]
    parts.append("namespaces: " + (", ".join(rule.namespaces) if rule.namespaces else "all"))
    parts.append("selector: " + (rule.selector_string or "none"))
    fields = rule.effective_sync_fields
    parts.append(
        "fields: " + (", ".join(fields) if fields else "all but server-managed metadata and status")
    )
    parts.append(f"status: {_yes(rule.effective_sync_status)}")
    parts.append(f"owned objects: {_yes(rule.include_owned)}")
    parts.append(f"immutable fields: {rule.immutable_policy}")
    return "\n        ".join(parts)


def summarize(syncer: KRMSyncer) -> str:
    """A readable account of what the operator will do with this KRMSyncer."""
    spec = syncer.spec
    ns = syncer.metadata.namespace or "<namespace of your kubectl context>"
    ref = spec.secret_ref
    field = "destination" if spec.destination is not None else "remote"
    other = f"Secret {ns}/{ref.name}, key {ref.key!r} (spec.{field})"
    if spec.mode == "push":
        direction = f"push: this cluster is the source; writes go to the cluster in {other}"
    else:
        direction = f"pull: this cluster is the destination; reads come from the cluster in {other}"
    suspended = _yes(spec.suspended_effective)
    if spec.suspended_effective:
        suspended += " (no watches, no writes)"
    lines = [
        f"  mode:        {direction}",
        f"  suspended:   {suspended}",
        "  namespace mapping: "
        + (
            f"every namespaced object goes to {spec.target.namespace!r}"
            if spec.target.namespace
            else "none (keep source namespaces)"
        ),
        "  rules:",
        *(f"    {_rule_line(i, r)}" for i, r in enumerate(spec.rules)),
        f"  policies:    conflict {spec.conflict_policy}, deletion {spec.deletion_policy}, "
        f"resync every {spec.resync_period}",
    ]
    return "\n".join(lines)


EXAMPLES = (
    "ray-syncer validate examples/krmsyncer-usage.yaml",
    "kubectl get krmsyncer app -n shop -o yaml | ray-syncer validate -",
    "ray-syncer validate app.yaml -o yaml        # the spec with every default filled in",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML manifests ('-' for stdin)")
    # table and wide are the readable summary (a manifest has no columns to widen);
    # "summary", the old name of table, still works.
    add_output_flag(parser, aliases={"summary": "table"},
                    help="table (default): what the operator will do; yaml/json: the parsed spec "
                    "with every default filled in")
    describe(parser, examples=EXAMPLES, exit_codes=codes(
        Exit.OK, Exit.NOT_READY, Exit.USAGE, OK="every KRMSyncer is valid",
        NOT_READY="a KRMSyncer is invalid or a file cannot be read", USAGE="usage error"))


def validate_files(
    files: list[str],
    *,
    output: str = "table",
    out: TextIO,
    err: TextIO,
    stdin: TextIO | None = None,
) -> int:
    failed = False
    for path in files:
        try:
            docs = list(read_documents(path, stdin=stdin))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            print(f"{path}: cannot read: {exc}", file=err)
            failed = True
            continue
        found = False
        for doc in docs:
            if not _is_krmsyncer(doc.body):
                kind = doc.body.get("kind", "<no kind>")
                name = (doc.body.get("metadata") or {}).get("name", "<no name>")
                print(f"{doc.source}: skipped {kind} {name} (not a KRMSyncer)", file=out)
                continue
            found = True
            try:
                syncer = parse_krmsyncer(doc.body)
            except SpecError as exc:
                failed = True
                print(f"{doc.source}: KRMSyncer is INVALID:", file=out)
                for message in exc.errors:
                    print(f"  - {message}", file=out)
                continue
            print(
                f"{doc.source}: KRMSyncer {syncer.metadata.namespace or '-'}/{syncer.name}: valid",
                file=out,
            )
            parsed = {
                "apiVersion": syncer.api_version,
                "kind": syncer.kind,
                "metadata": {
                    k: v
                    for k, v in (("name", syncer.name), ("namespace", syncer.metadata.namespace))
                    if v is not None
                },
                "spec": syncer.spec.to_api(),
            }
            if output in STRUCTURED:
                emit(parsed, output, out)
            else:
                print(summarize(syncer), file=out)
        if not found:
            print(f"{path}: no KRMSyncer found", file=out)
    return Exit.NOT_READY if failed else Exit.OK


def run(args: argparse.Namespace) -> int:
    return validate_files(args.files, output=args.output, out=sys.stdout, err=sys.stderr)
