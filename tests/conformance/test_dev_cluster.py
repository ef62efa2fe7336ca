"""``ray-syncer dev-cluster``: a standalone server another process (kubectl, Ray actors) can use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config


def test_dev_cluster_serves_its_kubeconfig_until_sigterm(fake: Any, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "dev.kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "ray_syncer", "dev-cluster", "--name", "devtest", "--tls",
                             "--kubeconfig-out", str(kubeconfig)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        deadline = time.monotonic() + 20
        while not (kubeconfig.exists() and kubeconfig.read_text()):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "dev-cluster did not write its kubeconfig"
            time.sleep(0.05)
        doc = yaml.safe_load(kubeconfig.read_text())
        assert doc["current-context"] == "devtest"
        assert doc["clusters"][0]["cluster"]["server"].startswith("https://")
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        names = [n.metadata.name for n in client.CoreV1Api(client.ApiClient(cfg)).list_namespace().items]
        assert "default" in names
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=15)[0].decode()
    assert proc.returncode == 0, out
    assert "KUBECONFIG" in out and "kubectl" in out
    assert doc["users"][0]["user"]["token"] not in out, "the token must not be printed when written to a file"
