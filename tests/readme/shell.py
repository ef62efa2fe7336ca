"""Running README blocks as a user does: bash, kubectl contexts named as in the README, and a
folder that sees the repository's files by their README paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from ray_syncer_testkit.envtest import ControlPlane

from tests.readme.blocks import README

REPO = README.parent


def merged_kubeconfig(planes: dict[str, ControlPlane]) -> str:
    """One kubeconfig with a context per plane, named by the dict's keys (users renamed: every
    plane calls its own admin)."""
    doc: dict[str, list[dict[str, object]]] = {"clusters": [], "users": [], "contexts": []}
    for name, plane in planes.items():
        one = yaml.safe_load(plane.kubeconfig())
        doc["clusters"].append({"name": name, "cluster": one["clusters"][0]["cluster"]})
        doc["users"].append({"name": f"{name}-admin", "user": one["users"][0]["user"]})
        doc["contexts"].append({"name": name, "context": {"cluster": name, "user": f"{name}-admin"}})
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **doc,
                           "current-context": next(iter(planes))}, sort_keys=False)


class Shell:
    """bash in ``folder``, where the repository's ``links`` (crds/, deploy/, ...) appear as in a
    clone, with ``KUBECONFIG`` holding the README's contexts (from ``planes``, or set by the
    ``prelude``). ``replace`` swaps literal text (a fixed port a shared machine may not have
    free; the ``--validate=false`` the README asks for on the in-memory clusters)."""

    def __init__(self, folder: Path, planes: dict[str, ControlPlane] | None, *,
                 links: tuple[str, ...], replace: dict[str, str] | None = None,
                 prelude: str = "") -> None:
        self.folder = folder
        self.replace = replace or {}
        self.prelude = prelude  # run before every block (the README's own `export KUBECONFIG=`)
        for name in links:
            (folder / name).symlink_to(REPO / name)
        self.env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self.env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                         "RAY_USAGE_STATS_ENABLED": "0"})
        if planes is not None:
            (folder / "kubeconfig").write_text(merged_kubeconfig(planes))
            self.env["KUBECONFIG"] = str(folder / "kubeconfig")

    def script(self, block: str) -> list[str]:
        for old, new in self.replace.items():
            block = block.replace(old, new)
        return ["bash", "-c", "set -euo pipefail\n" + self.prelude + "\n" + block]

    def run(self, block: str, *, timeout: float = 240) -> str:
        proc = subprocess.run(self.script(block), cwd=self.folder, env=self.env, text=True,
                              capture_output=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"README block failed ({proc.returncode}):\n{block}\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def start(self, block: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(self.script(block), cwd=self.folder, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
