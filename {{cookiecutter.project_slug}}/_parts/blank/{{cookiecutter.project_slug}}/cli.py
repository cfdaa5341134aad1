"""The command line, `python -m <package> COMMAND`: one function per command.

`hello` shows the shape of a command: add the pset's own next to it, each with its
sub-parser in `build_parser` and a test in tests/test_cli.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import metadata

from . import __version__


def hello(args: argparse.Namespace) -> int:
    """Greet someone: an example command, to be replaced by the pset's own."""
    print(f"Hello, {args.name}!")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        # The project's one-line description, as pyproject.toml gives it.
        description=metadata(__package__)["Summary"],
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True
    greet = commands.add_parser("hello", help="say hello (an example command)")
    greet.add_argument(
        "name", nargs="?", default="world", help="who to greet (default: world)"
    )
    greet.set_defaults(run=hello)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command the arguments name; argparse reports bad ones (exit 2)."""
    args = build_parser().parse_args(argv)
    return args.run(args)
