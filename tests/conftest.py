"""pytest's root of the tests: being here puts tests/ on ``sys.path`` (pytest's default import
mode), so the co-simulation tests in tests/cosim/ share the helpers of tests/programs.py.

``make test`` runs the tests on two pytest-xdist workers (``-n auto --dist loadgroup``): each
co-simulation file is one group, run by one worker from start to end (its tests share its
models), and the workers share out the groups and the other tests. A model that two workers want
at once is built by the first (``runner.build_model``'s lock) and found by the second."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cosim" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group(f"cosim-{item.path.stem}"))
