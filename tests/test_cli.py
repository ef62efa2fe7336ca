"""The command router: each subcommand loads only its own module (the run path never loads test code)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ray_syncer import cli

PROBE = """
import sys
from ray_syncer import cli
try:
    cli.main({argv!r})
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.startswith("ray_syncer"))
print("\\n".join(loaded))
"""


def _loaded_by(argv: list[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return set(out.split())


def test_run_does_not_load_the_in_memory_server() -> None:
    loaded = _loaded_by(["run", "--help"])
    assert "ray_syncer.run" in loaded
    assert not {m for m in loaded if m.startswith("ray_syncer_testkit")}, sorted(loaded)


def test_crd_loads_neither_ray_nor_the_operator() -> None:
    loaded = _loaded_by(["crd"])
    assert "ray_syncer.api.crd" in loaded
    assert not {m for m in loaded if m.startswith(("ray_syncer.fleet", "ray_syncer.operator"))}


@pytest.mark.parametrize("command", ["demo", "dev-cluster"])
def test_without_the_test_kit_demo_and_dev_cluster_say_how_to_get_it(command: str) -> None:
    # As after `pip install ray-syncer` alone: the test kit cannot be imported.
    probe = ("import sys; sys.modules['ray_syncer_testkit'] = None\n"
             f"from ray_syncer import cli; sys.exit(cli.main([{command!r}]))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "pip install ray-syncer-testkit" in proc.stderr and command in proc.stderr


@pytest.mark.parametrize("argv", [["dev-cluster", "--help"], ["run", "--help"], ["--help"]])
def test_every_subcommand_still_parses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: ray-syncer" in out
    if argv[0] == "--help":
        assert all(name in out for name in cli.SUBCOMMANDS)
