"""The chaos suite's pytest wiring: the `chaos` marker, the `--chaos-seed` option
and the `chaos_seed` parameter every case takes.

Seeds: `--chaos-seed 7` (or `1,2,3`), else $CHAOS_SEED, else
`tests.harness.chaos.DEFAULT_SEEDS`. A `slow` case runs every seed; a smoke
case (not `slow`, so part of `make test`) runs the first one only, to keep
`make test` short. A heavy case marked `chaos_runs(n)` runs the first n seeds
only, so `make test-chaos` stays within its time budget. `--chaos-seed` is
known to pytest when tests/chaos is on the command line (`make test-chaos`
passes it); $CHAOS_SEED works anywhere.
"""

from __future__ import annotations

import pytest

from tests.harness.chaos import seeds


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-seed",
        default=None,
        help="seed(s) for the chaos cases, e.g. 7 or 1,2,3 (default: $CHAOS_SEED or 1,2,3)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: seeded fault/churn case with invariant checks (make test-chaos)"
    )
    config.addinivalue_line(
        "markers", "chaos_runs(n): a heavy chaos case runs only the first n of the chosen seeds"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" not in metafunc.fixturenames:
        return
    chosen = seeds(metafunc.config.getoption("--chaos-seed", default=None))
    runs = metafunc.definition.get_closest_marker("chaos_runs")
    if metafunc.definition.get_closest_marker("slow") is None:
        chosen = chosen[:1]
    elif runs is not None:
        chosen = chosen[: int(runs.args[0])]
    metafunc.parametrize("chaos_seed", chosen, ids=[f"seed{s}" for s in chosen])
