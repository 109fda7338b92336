"""pytest's root of the tests: being here puts tests/ on ``sys.path`` (pytest's default import
mode), so the co-simulation tests in tests/cosim/ share the helpers of tests/programs.py."""
