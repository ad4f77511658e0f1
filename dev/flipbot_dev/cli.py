"""``flipbot``: the command line.

``flipbot replay`` runs the local digital twin: the deployed system (template, state
machine, handlers) trading on replayed market data, with no AWS account, no keys and no
network. Each subcommand lives in ``flipbot_dev.commands.<name>``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, each with ``register(subparsers)``; imported only to build the parser.
COMMANDS = [
    "replay",
    "exchange",
    "listen",
    "compare",
    "status",
    "history",
    "pnl",
    "account",
    "cost",
    "iam",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flipbot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"flipbot_dev.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
