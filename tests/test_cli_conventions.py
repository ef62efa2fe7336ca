"""kubectl conventions of the command line (``ray_syncer.clikit``): help, exit codes, bad values,
the namespace default, output formats and the deprecated spellings of the peer flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from ray_syncer import cli
from ray_syncer.clikit.exits import Exit
from ray_syncer.clikit.flags import resolve_namespace
from ray_syncer.clikit.output import emit
from ray_syncer.kube.config import ClusterConfig, load_in_cluster, load_kubeconfig_file

OURS = ("run", "demo", "crd", "validate", "status", "diff", "failover")
POSITIONAL = {"validate": ["x.yaml"], "diff": ["app"], "failover": ["app"]}


def parse(*argv: str) -> argparse.Namespace:
    args, unknown = cli.build_parser(argv[0]).parse_known_args(list(argv))
    assert not unknown
    return args


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    assert exc.value.code == Exit.USAGE
    return capsys.readouterr().err


@pytest.mark.parametrize("command", [*OURS, "dev-cluster"])
def test_help_shows_examples_and_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    examples, codes = out.index("examples:\n"), out.index("exit codes:\n")
    assert examples < codes
    assert f"ray-syncer {command}" in out[examples:codes]
    assert "  0 " in out[codes:] and "  2 " in out[codes:]


def test_failover_help_documents_the_refusal_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["failover", "--help"])
    out = capsys.readouterr().out
    assert "  3      refused by a safety check" in out and "--dry-run" in out


@pytest.mark.parametrize("command", OURS)
def test_an_unknown_flag_prints_that_subcommands_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(capsys, command, *POSITIONAL.get(command, []), "--no-such-flag")
    assert f"usage: ray-syncer {command}" in err
    assert "unrecognized arguments: --no-such-flag" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--log-level", "chatty"], "invalid log level 'chatty'"),
        (["failover", "app", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (["failover", "app", "--timeout", "-5"], "must be at least 0 seconds"),
        (["failover", "app", "--confirm-timeout", "0"], "must be at least 0 seconds"),
        (["status", "-o", "xml"], "invalid output format 'xml'"),
        (["crd", "-o", "table"], "invalid output format 'table'"),
        (["run", "--metrics-port", "99999"], "at most 65535"),
        (["demo", "--timeout", "inf"], "argument --timeout"),
    ],
)
def test_a_bad_value_is_a_clear_usage_error(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(capsys, *argv)
    assert says in err and f"usage: ray-syncer {argv[0]}" in err


def test_values_are_case_insensitive() -> None:
    assert parse("run", "--log-level", "debug").log_level == "DEBUG"
    assert parse("status", "-o", "YAML").output == "yaml"
    assert parse("validate", "x.yaml", "-o", "summary").output == "table"  # the old name
    assert parse("failover", "app", "--timeout", "90").timeout == 90.0


OLD_FAILOVER = [
    ("--standby-kubeconfig", "peer_kubeconfig", "--peer-kubeconfig"),
    ("--standby-context", "peer_context", "--peer-context"),
    ("--reverse-name", "peer_name", "--peer-name"),
    ("--reverse-secret", "peer_secret", "--peer-secret"),
    ("--reverse-kubeconfig", "peer_secret_from_file", "--peer-secret-from-file"),
]


@pytest.mark.parametrize(("old", "dest", "new"), OLD_FAILOVER)
def test_old_failover_spellings_still_work_with_a_warning(
    old: str, dest: str, new: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("failover", "app", old, "value")
    assert getattr(args, dest) == "value"
    err = capsys.readouterr().err
    assert err.strip() == f"warning: {old} is deprecated and will be removed in the next release; use {new}"
    # The new spelling says nothing.
    assert getattr(parse("failover", "app", new, "value"), dest) == "value"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("old", ["--source-kubeconfig", "--source-context", "--dest-kubeconfig",
                                 "--dest-context"])
def test_old_diff_spellings_still_work_with_a_warning(
    old: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("diff", "app", old, "value")
    assert getattr(args, old[2:].replace("-", "_")) == "value"
    assert f"warning: {old} is deprecated" in capsys.readouterr().err
    assert getattr(parse("diff", "app"), old[2:].replace("-", "_")) is None


@pytest.mark.parametrize("command", ["diff", "failover"])
def test_old_spellings_are_hidden_from_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "--peer-kubeconfig" in out and "--peer-context" in out
    for old in ("--standby-", "--reverse-", "--source-", "--dest-"):
        assert old not in out


def test_namespace_is_the_flag_else_the_contexts_else_default() -> None:
    ctx = ClusterConfig(server="https://x", namespace="team-a")
    plain = ClusterConfig(server="https://x")
    assert resolve_namespace(parse("status", "-n", "shop"), ctx) == "shop"
    assert resolve_namespace(parse("status"), ctx) == "team-a"
    assert resolve_namespace(parse("status"), plain) == "default"
    assert resolve_namespace(parse("status", "-A", "-n", "shop"), ctx) is None
    assert parse("run").namespace is None  # the operator serves every namespace unless told


def test_the_context_namespace_comes_from_the_kubeconfig_and_the_pod(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
                     {"name": "b", "context": {"cluster": "c", "user": "u"}}],
    }))
    assert load_kubeconfig_file(str(kc)).namespace == "team-a"
    assert load_kubeconfig_file(str(kc), context="b").namespace is None
    (tmp_path / "token").write_text("t")
    (tmp_path / "ca").write_bytes(b"")
    (tmp_path / "namespace").write_text("krmsyncer-system\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    pod = load_in_cluster(token_path=str(tmp_path / "token"), ca_path=str(tmp_path / "ca"),
                          namespace_path=str(tmp_path / "namespace"), environ=env)
    assert pod.namespace == "krmsyncer-system"
    assert load_in_cluster(token_path=str(tmp_path / "token"), ca_path=str(tmp_path / "ca"),
                           namespace_path=str(tmp_path / "absent"), environ=env).namespace is None


def test_yaml_and_json_output_carry_the_same_data(capsys: pytest.CaptureFixture[str]) -> None:
    data = {"name": "app", "shards": [{"missing": ["shop/a"], "lag": 1.5}], "ok": True, "n": None}
    emit(data, "json")
    assert json.loads(capsys.readouterr().out) == data
    emit(data, "yaml")
    assert yaml.safe_load(capsys.readouterr().out) == data


def test_status_by_name_across_all_namespaces_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}],
    }))
    assert cli.main(["status", "app", "-A", "--kubeconfig", str(kc)]) == Exit.USAGE
    assert "a KRMSyncer name needs one namespace" in capsys.readouterr().out
