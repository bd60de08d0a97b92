"""The ``smearscope`` command: parses arguments and hands each subcommand to one module."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules in smearscope.tools; each defines ``register(subparsers)``, which adds
# its parser and sets ``run=<function(args) -> int>`` as a default.
COMMAND_MODULES = (
    "cmd_data",
    "cmd_detect",
    "cmd_phantom",
    "cmd_fiftyone",
    "cmd_cells",
    "cmd_analyze",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="smearscope",
        description="Find, type and explain white blood cells in peripheral blood smear captures.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"smearscope.tools.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:
        print(f"smearscope {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"smearscope {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
