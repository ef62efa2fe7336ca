"""`ray-syncer run` flags reach the operator and the engine as parsed values."""

from __future__ import annotations

import argparse

import pytest

from ray_syncer.engine.options import EngineOptions
from ray_syncer.operator.options import configure, options_from_args


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_the_engines_production_defaults() -> None:
    opts = options_from_args(_parse())
    assert opts.engine_options == EngineOptions()
    assert opts.metrics_port == 9090
    assert opts.max_shards_per_actor == 0  # automatic packing
    assert opts.supervisor_resource is None  # the head node


def test_engine_tuning_flags_reach_the_engine_options() -> None:
    opts = options_from_args(
        _parse(
            "--dest-qps", "1500", "--dest-burst", "3000", "--max-in-flight", "64",
            "--batch-size", "250", "--delete-guard-fraction", "0.2", "--delete-guard-min", "5",
            "--tenant-namespaces", "ops, platform", "--restrict-to-own-namespace",
        )
    )  # fmt: skip
    e = opts.engine_options
    assert (e.dest_qps, e.dest_burst, e.max_in_flight, e.batch_size) == (1500, 3000, 64, 250)
    assert (e.delete_guard_fraction, e.delete_guard_min) == (0.2, 5)
    assert opts.tenant_namespaces == frozenset({"ops", "platform"})
    assert opts.settings("ctx").engine_options is e


@pytest.mark.parametrize(
    "argv", [("--dest-qps", "0"), ("--max-in-flight", "0"), ("--delete-guard-fraction", "1.5")],
)  # fmt: skip
def test_invalid_tuning_is_refused_with_a_message(argv: tuple[str, ...]) -> None:
    # Values valid alone but not together: ray-syncer run prints the message and exits 2.
    with pytest.raises(ValueError, match="must be"):
        options_from_args(_parse(*argv))


@pytest.mark.parametrize(
    "argv",
    [("--max-shards-per-actor", "-1"), ("--stop-timeout", "3"), ("--stop-timeout", "nan"),
     ("--metrics-port", "70000"), ("--log-level", "chatty")],
)  # fmt: skip
def test_a_bad_value_is_a_usage_error_naming_the_flag(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _parse(*argv)
    assert exc.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_log_level_is_case_insensitive_and_n_restricts_the_watch() -> None:
    args = _parse("--log-level", "debug", "-n", "shop")
    assert args.log_level == "DEBUG"
    assert options_from_args(args).namespace == "shop"
    assert options_from_args(_parse()).namespace is None  # all namespaces, not the context's
