"""The `opentsp` command line."""


def main(argv=None):
    raise SystemExit("opentsp: not yet")
