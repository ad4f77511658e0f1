"""``flipbot listen``: the listener (the Fargate task): Binance streams -> EventBridge."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    listen = sub.add_parser(
        "listen",
        help="follow Binance (market streams, user data stream) and publish to EventBridge",
        description="Configured by environment variables; see flipbot.listener.settings.",
    )
    listen.add_argument(
        "--dry-run",
        action="store_true",
        help="no AWS: log events and metrics instead of publishing them, write no snapshot",
    )
    listen.add_argument(
        "--check", action="store_true", help="validate the settings, print them and exit"
    )
    listen.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flipbot.domain.errors import ConfigurationError
    from flipbot.listener.settings import ListenerSettings

    try:
        settings = ListenerSettings.from_env(os.environ, dry_run=args.dry_run)
    except ConfigurationError as exc:
        print(f"flipbot listen: {exc}", file=sys.stderr)
        return 2
    if args.check:
        shown = settings.model_dump(mode="json", exclude={"api_key", "api_secret"})
        for key, value in sorted(shown.items()):
            print(f"{key}: {value}")
        print(f"market_url: {settings.market_url()}")
        return 0
    from flipbot.listener.wiring import configure_logging, run_listener

    configure_logging(
        settings.log_level,
        secrets=[settings.api_key.get_secret_value(), settings.api_secret.get_secret_value()],
    )
    return run_listener(settings, dry_run=args.dry_run)
