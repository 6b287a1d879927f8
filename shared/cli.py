"""The ``recodai`` command line: one entry point, sub-commands contributed by each layer.

Each package registers its sub-commands through the ``recodai.commands`` entry-point group in
``pyproject.toml``, so this module never imports the layers above ``shared``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from shared.logs import setup_logging

log = logging.getLogger("recodai")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="recodai", description="Copy-move forgery detection for scientific figures.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in sorted(entry_points(group="recodai.commands"), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; user errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as exc:
        if args.verbose:
            raise
        print(f"recodai {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
