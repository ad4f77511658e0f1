"""``flipbot listen``: the listener (the Fargate task), as the image runs it.

The listener ships in the runtime package (``flipbot-listen``,
:mod:`flipbot.listener.__main__`); this command runs the same entry point.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from flipbot.listener.__main__ import DESCRIPTION, add_arguments

    listen = sub.add_parser(
        "listen",
        help="follow Binance (market streams, user data stream) and publish to EventBridge",
        description=DESCRIPTION,
    )
    add_arguments(listen)
    listen.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flipbot.listener.__main__ import run as run_listener

    return run_listener(args, prog="flipbot listen")
