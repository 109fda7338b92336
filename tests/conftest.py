"""pytest's root of the tests: being here puts tests/ on ``sys.path`` (pytest's default import
mode), so the co-simulation tests in tests/cosim/ share the helpers of tests/programs.py.

``make test`` runs the tests on two pytest-xdist workers (``-n auto --dist loadgroup``): the
co-simulation tests form one group, run by one worker one after another (their Verilator and
Icarus builds, which take both cores, in turn), while the other worker takes the rest; a group
per file was no quicker (docs/verification.md). A model that two
processes want at once is built by the first (``runner.build_model``'s lock)."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cosim" in item.path.parts:
            # A module with a model of its own to build may name a group of its own
            # (XDIST_GROUP), which the other worker can take meanwhile.
            group = getattr(item.module, "XDIST_GROUP", "cosim")
            item.add_marker(pytest.mark.xdist_group(group))
