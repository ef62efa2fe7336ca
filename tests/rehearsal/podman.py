"""Runs a :class:`~tests.rehearsal.kuberay.Pod` as a podman container, as a kubelet would run it.

How podman is called on this machine (runtime, cgroup manager, rlimits, host network) comes from
``hack/engine.sh``, the same place ``make image`` reads. The container gets what the pod spec
says and nothing more: the command and args as Kubernetes' command/args (ENTRYPOINT/CMD), the
env (through a private env file, so the Ray token is not on a command line), the numeric user and
group plus fsGroup as a supplementary group, dropped capabilities, ``no-new-privileges`` where
privilege escalation is off, podman's default seccomp profile (RuntimeDefault), a read-only root
where the manifest asks for one (and no tmpfs podman would add on its own), memory and CPU
limits, emptyDirs as fresh host folders (``medium: Memory`` as tmpfs), ``/dev/shm`` sized as
KubeRay sizes it, and the ServiceAccount token, CA and namespace at the in-cluster path.

Every container carries the label ``krmsyncer-rehearsal=<run id>``; :meth:`Podman.remove_all`
removes them whatever state they are in, so a failed rehearsal leaves nothing running.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.deploy.manifests import REPO
from tests.rehearsal.kuberay import SA_MOUNT, Pod

LABEL = "krmsyncer-rehearsal"


def engine_argv() -> tuple[list[str], list[str]] | None:
    """(podman and its global flags, per-container flags) from hack/engine.sh, or None."""
    proc = subprocess.run(["bash", str(REPO / "hack" / "engine.sh")], capture_output=True,
                          text=True, env={"CONTAINER_ENGINE": "podman",
                                          "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"})
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != 2:
        return None
    return shlex.split(lines[0]), shlex.split(lines[1])


class Podman:
    def __init__(self, run_id: str, folder: Path) -> None:
        argv = engine_argv()
        if argv is None:
            raise RuntimeError("hack/engine.sh found no podman")
        self.base, self.flags = argv
        self.run_id = run_id
        self.folder = folder

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:2])} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def cannot_run(self, image: str) -> str:
        """Why podman cannot run ``image`` here, or "" when a container of it ran."""
        try:
            self("run", "--rm", *self.flags, "--entrypoint", "true", image, timeout=120)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            return str(e)
        return ""

    def image_exists(self, image: str) -> bool:
        return subprocess.run([*self.base, "image", "exists", image]).returncode == 0

    def container(self, pod: Pod) -> str:
        return f"rehearsal-{self.run_id}-{pod.name}"

    def run(self, pod: Pod, *, image: str, sa_files: dict[str, str]) -> str:
        """Starts ``pod`` detached; returns the container's name."""
        name = self.container(pod)
        pod_dir = self.folder / pod.name
        pod_dir.mkdir(parents=True)
        env_file = pod_dir / "env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in pod.env.items()))
        env_file.chmod(0o600)
        sa_dir = pod_dir / "serviceaccount"
        sa_dir.mkdir()
        for fname, text in sa_files.items():
            (sa_dir / fname).write_text(text)
            (sa_dir / fname).chmod(0o644)

        args = ["run", "--detach", "--name", name, "--label", f"{LABEL}={self.run_id}",
                *self.flags, "--env-file", str(env_file),
                "-v", f"{sa_dir}:{SA_MOUNT}:ro"]
        if pod.run_as_user is not None:
            group = f":{pod.run_as_group}" if pod.run_as_group is not None else ""
            args += ["--user", f"{pod.run_as_user}{group}"]
        if pod.fs_group is not None:
            args += ["--group-add", str(pod.fs_group)]
        for cap in pod.drop_capabilities:
            args += ["--cap-drop", cap]
        if not pod.allow_privilege_escalation:
            args += ["--security-opt", "no-new-privileges"]
        if pod.read_only_root:
            # Kubernetes adds no tmpfs of its own to a read-only root; podman would.
            args += ["--read-only", "--read-only-tmpfs=false"]
        if pod.memory_limit is not None:
            args += ["--memory", f"{pod.memory_limit}b"]
        if pod.cpu_limit is not None:
            args += ["--cpus", f"{pod.cpu_limit:g}"]
        if pod.shm_bytes is not None:
            args += ["--shm-size", f"{pod.shm_bytes}b"]
        for volume, path, read_only in pod.volume_mounts:
            if volume in pod.memory_volumes:
                args += ["--tmpfs", f"{path}:rw,mode=1777"]
                continue
            host = pod_dir / "volumes" / volume
            host.mkdir(parents=True, exist_ok=True)
            host.chmod(0o777)  # an emptyDir is writable by the pod's (fs)group
            args += ["-v", f"{host}:{path}:{'ro' if read_only else 'rw'}"]
        if pod.command:
            args += ["--entrypoint", json.dumps(pod.command)]
        args += [image, *pod.args]
        self(*args)
        return name

    def volume(self, pod: Pod, volume: str) -> Path:
        """The host folder behind one of ``pod``'s emptyDirs."""
        return self.folder / pod.name / "volumes" / volume

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self("inspect", "--type", "container", name))[0]

    def running(self, name: str) -> bool:
        return bool(self.inspect(name)["State"]["Running"])

    def logs(self, name: str) -> str:
        proc = subprocess.run([*self.base, "logs", name], capture_output=True, text=True)
        return proc.stdout + proc.stderr

    def kill(self, name: str, signal: str = "KILL") -> None:
        self("kill", "--signal", signal, name)

    def stop(self, name: str, *, grace_s: int) -> float:
        """``podman stop --time grace``: SIGTERM to PID 1, SIGKILL after the grace period, as the
        kubelet does. Returns the seconds until the container had exited."""
        t0 = time.monotonic()
        self("stop", "--time", str(grace_s), name, timeout=grace_s + 60)
        return time.monotonic() - t0

    def remove_all(self) -> None:
        ids = self("ps", "-a", "-q", "--filter", f"label={LABEL}={self.run_id}", check=False).split()
        if ids:
            self("rm", "--force", "--time", "0", *ids, check=False, timeout=180)
