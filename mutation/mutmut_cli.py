"""mutmut's own command line, with each function's tests widened to the whole test files that reach it.

mutmut runs a mutant only against the tests its stats pass saw reach the mutated function, and it
charges a call to the test during whose setup, call or teardown it happened. A module-scoped fixture
(a planted store built once, then read by every test of the file) runs during the FIRST test's
setup, so the figure functions it calls were charged to that one test, and the tests that check the
fixture's output (the edit-gap edges, the retry window ...) never ran against those mutants: they
survived untested. Widened, a mutant of such a function runs every selected test of those files;
the fixture is still set up once per file, and a killed mutant stops at its first failure (-x).

    python -m mutation.mutmut_cli run ...    # as `mutmut run ...`; mutation/run.py calls it this way
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import mutmut.__main__ as mutmut_main
from mutmut.runners.harness import PytestRunner


def widen_to_test_files() -> None:
    """Add to each function's tests every selected test of a file that already reaches it."""
    state = mutmut_main.state()
    selected: dict[str, set[str]] = defaultdict(set)
    for test in state.duration_by_test:  # every test the stats pass ran (the module's selection)
        selected[test.split("::", 1)[0]].add(test)
    for tests in state.tests_by_mangled_function_name.values():
        for path in {t.split("::", 1)[0] for t in tests}:
            tests |= selected[path]


_collect_or_load_stats = mutmut_main.collect_or_load_stats


def collect_or_load_stats(*args: object, **kwargs: object) -> None:
    _collect_or_load_stats(*args, **kwargs)  # type: ignore[arg-type]
    widen_to_test_files()
    mutmut_main.save_stats()


mutmut_main.collect_or_load_stats = collect_or_load_stats  # type: ignore[assignment]


class SetupDurations:
    """Charge each test's setup and teardown (its module fixtures: a planted store, a dataset build)
    to its duration too. mutmut counts the call phase only, so the per-mutant CPU limit, which it
    derives from those durations, left out the fixtures every widened run sets up again: a mutant
    that changes nothing ran out of CPU under it and was counted as a timeout, i.e. as killed."""

    def pytest_runtest_makereport(self, item: Any, call: Any) -> None:
        if call.when in ("setup", "teardown"):
            durations = mutmut_main.state().duration_by_test
            durations[item.nodeid] = durations.get(item.nodeid, 0) + call.duration


_execute_pytest = PytestRunner.execute_pytest


def execute_pytest(self: PytestRunner, params: list[str], **kwargs: Any) -> int:
    if "plugins" in kwargs:  # the stats pass (and mutmut's test listing, where the extra plugin is harmless)
        kwargs["plugins"] = [*kwargs["plugins"], SetupDurations()]
    return _execute_pytest(self, params, **kwargs)


PytestRunner.execute_pytest = execute_pytest  # type: ignore[method-assign]

if __name__ == "__main__":
    mutmut_main.cli()
