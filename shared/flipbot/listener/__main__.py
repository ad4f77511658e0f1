"""``flipbot-listen`` (or ``python -m flipbot.listener``): the listener's entry point.

The container image runs it (``listener/Dockerfile``); ``flipbot listen`` in a development
install runs the same function. Configured by environment variables
(:class:`flipbot.listener.settings.ListenerSettings`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

PROG = "flipbot-listen"
DESCRIPTION = (
    "follow Binance (market streams, user data stream) and publish to EventBridge; "
    "configured by environment variables (see flipbot.listener.settings)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The listener's options, shared by ``flipbot-listen`` and ``flipbot listen``."""
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="no AWS: log events and metrics instead of publishing them, write no snapshot",
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the settings, print them and exit"
    )


def run(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, prog: str = PROG
) -> int:
    """Validate the settings, then print them (``--check``) or run until SIGTERM."""
    from flipbot.domain.errors import ConfigurationError
    from flipbot.listener.settings import ListenerSettings

    try:
        settings = ListenerSettings.from_env(
            os.environ if environ is None else environ, dry_run=args.dry_run
        )
    except ConfigurationError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
