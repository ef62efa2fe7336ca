"""What ray_syncer.kube.config relies on in the official ``kubernetes`` kubeconfig loader, pinned.

The loader has no public call that resolves credentials without writing inline
key material to temp files (``load_and_set`` does), so config.py calls
``KubeConfigLoader._load_authentication`` and reads the attributes it sets. Those
are not public API. This file exercises exactly those members, one test per
auth mode, against the installed ``kubernetes``: an upgrade that changes them
fails here, not in a user's cluster. pyproject.toml allows only the releases
this has passed on: 32 to 37 (checked one by one; on 31, ``ExecProvider`` takes
other arguments, so an exec token could not be refreshed).
"""

from __future__ import annotations

import base64
import datetime
import os
import sys
from pathlib import Path

from kubernetes.config.dateutil import parse_rfc3339
from kubernetes.config.exec_provider import ExecProvider
from kubernetes.config.kube_config import (
    ENV_KUBECONFIG_PATH_SEPARATOR,
    ConfigNode,
    FileOrData,
    KubeConfigLoader,
    KubeConfigMerger,
)

SERVER = "https://127.0.0.1:6443"


def _doc(user: dict[str, object], cluster: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": SERVER, **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }


def _authenticate(doc: dict[str, object], base: str | None = None) -> KubeConfigLoader:
    loader = KubeConfigLoader(config_dict=doc, active_context="c", config_base_path=base)
    loader._load_authentication()
    return loader


def test_a_token_becomes_a_bearer_header() -> None:
    assert _authenticate(_doc({"token": "abc"})).token == "Bearer abc"


def test_a_token_file_is_read_relative_to_the_base_path(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    # The file's content as is; config.py strips the newline.
    assert _authenticate(_doc({"tokenFile": "tok"}), str(tmp_path)).token == "Bearer from-file\n"


def test_basic_auth_is_a_basic_header() -> None:
    token = _authenticate(_doc({"username": "a", "password": "b"})).token
    assert isinstance(token, str) and token.split(" ", 1)[0].lower() == "basic"


def _exec(tmp_path: Path, status: dict[str, str]) -> dict[str, object]:
    script = tmp_path / "plugin.py"
    script.write_text("import json\nprint(json.dumps(" + repr({
        "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status,
    }) + "))\n")
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(script)], "interactiveMode": "Never"}}


def test_an_exec_token_sets_token_and_expiry(tmp_path: Path) -> None:
    loader = _authenticate(_doc(_exec(tmp_path, {"token": "t-exec",
                                                 "expirationTimestamp": "2030-01-02T03:04:05Z"})))
    assert loader.token == "Bearer t-exec"
    assert isinstance(loader.expiry, datetime.datetime)
    assert loader.expiry.timestamp() == parse_rfc3339("2030-01-02T03:04:05Z").timestamp()
    assert not getattr(loader, "cert_file", None)


def test_an_exec_client_certificate_sets_cert_file(tmp_path: Path) -> None:
    # config.py refuses this mode by looking at cert_file: it must be set.
    loader = _authenticate(_doc(_exec(tmp_path, {"clientCertificateData": "CERT", "clientKeyData": "KEY"})))
    assert getattr(loader, "cert_file", None)


def test_exec_provider_runs_a_plugin_again(tmp_path: Path) -> None:
    spec = _exec(tmp_path, {"token": "again"})["exec"]
    status = ExecProvider(ConfigNode("exec", spec), str(tmp_path), None).run()
    assert status["token"] == "again"


def test_inline_credentials_are_not_written_to_disk() -> None:
    # The reason config.py uses _load_authentication and not load_and_set.
    import tempfile

    before = set(os.listdir(tempfile.gettempdir()))
    _authenticate(_doc({"token": "abc", "client-key-data": base64.b64encode(b"KEY").decode()},
                       {"certificate-authority-data": base64.b64encode(b"CA").decode()}))
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


def test_file_or_data_reads_inline_data_and_files(tmp_path: Path) -> None:
    inline = base64.b64encode(b"inline-ca").decode()
    assert FileOrData({"certificate-authority-data": inline}, "certificate-authority",
                      file_base_path="").as_data() == inline
    (tmp_path / "ca.crt").write_bytes(b"file-ca")
    got = FileOrData({"certificate-authority": "ca.crt"}, "certificate-authority",
                     file_base_path=str(tmp_path)).as_data()
    assert base64.b64decode(got) == b"file-ca"


def test_merger_keeps_the_first_definition_and_the_paths(tmp_path: Path) -> None:
    import yaml

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump(_doc({"token": "first"})))
    b.write_text(yaml.safe_dump(_doc({"token": "second"})))
    merged = KubeConfigMerger(f"{a}{ENV_KUBECONFIG_PATH_SEPARATOR}{b}").config
    assert isinstance(merged, ConfigNode)
    users = merged["users"]
    assert users[0]["user"]["token"] == "first" and len(list(users)) == 1
    assert users[0].path == str(a)  # config.py resolves relative file keys against it
