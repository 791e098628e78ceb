"""The `jangar` command: the operator process and developer tooling.

Subcommands are registered by small modules so each concern keeps its own argument parsing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jangar.dev import cli as dev_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jangar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
