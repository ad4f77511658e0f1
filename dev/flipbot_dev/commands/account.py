"""``flipbot account``: the account as the exchange holds it — each asset's balance (free,
locked) and the open orders on every symbol — from Binance, the testnet, a running
``flipbot exchange serve`` or a deployed stack's exchange.

Where it asks, and with which key:

* ``--stack NAME`` — the stack's Binance secret (its ``BinanceSecretArn`` output), read
  as the functions read it (:func:`flipbot.adapters.aws.read_secret`, default AWS
  credentials, ``--region`` or the configured region), at the stack's ``BinanceBaseUrl``
  (empty: Binance) unless ``--base-url`` says otherwise;
* otherwise ``BINANCE_API_KEY`` / ``BINANCE_API_SECRET`` from the environment, at
  ``--base-url``, else ``BINANCE_BASE_URL``, else Binance.

The calls are the bot's own (:class:`flipbot.adapters.binance_exchange.BinanceExchange`:
``balances`` and ``open_orders``). A replay's output directory is not a source: it keeps
the books and the final balances' totals, not the exchange's account (free and locked,
its open orders); serve the market with ``flipbot exchange serve`` and ask it instead.

Exit status: 0, 2 when the command cannot be set up (a bad value, missing credentials, a
stack or secret that cannot be read), 1 when the exchange refuses or cannot be reached.
Messages name the bad value or variable, never a key or a secret.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flipbot.domain.errors import ClockSkew, ConfigurationError, FlipbotError
from flipbot.domain.model import Balance, OrderState
from flipbot_dev.commands._table import text_table
from flipbot_dev.commands.status import stamp

BINANCE = "https://api.binance.com"
KEY_VARIABLE, SECRET_VARIABLE, URL_VARIABLE = (
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "BINANCE_BASE_URL",
)
#: the template's placeholder in a freshly deployed stack's Binance secret
PLACEHOLDER = "FILL_ME"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SetupError(Exception):
    """The command cannot ask the exchange; the message says why (exit status 2)."""


@dataclass(frozen=True)
class Access:
    """Whom to ask and with which key pair; ``label`` says where the key came from."""

    base_url: str  # "" for Binance
    api_key: str
    api_secret: str
    label: str

    @property
    def endpoint(self) -> str:
        return self.base_url or BINANCE


@dataclass(frozen=True)
class Account:
    balances: Sequence[Balance]  # non-zero, by asset
    orders: Sequence[OrderState]  # by symbol, then price
    time_ms: int  # when it was read (the local clock)


def register(sub: Any) -> None:
    parser = sub.add_parser("account", help="the account on the exchange: balances and open orders")
    parser.add_argument(
        "--base-url",
        help="a Binance-compatible REST endpoint, e.g. https://testnet.binance.vision or a "
        f"'flipbot exchange serve' at http://127.0.0.1:PORT (default: ${URL_VARIABLE}, the "
        "stack's BinanceBaseUrl, or Binance)",
    )
    parser.add_argument(
        "--stack",
        help=f"a deployed stack: use its Binance secret (default: ${KEY_VARIABLE} and "
        f"${SECRET_VARIABLE})",
    )
    parser.add_argument("--region", help="AWS region of --stack (default: configured)")
    parser.add_argument("--json", action="store_true", help="print the account as JSON")
    parser.set_defaults(func=run)


# --- where to ask -------------------------------------------------------------------------
def checked_base_url(value: str, name: str) -> str:
    """``value`` without a trailing slash; :class:`SetupError` naming ``name`` unless it
    is an ``http(s)://host[:port]`` root."""
    try:
        parts = urlsplit(value.strip())
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        raise SetupError(
            f"{name} {value!r}: expected an http(s)://host[:port] root without a path, "
            "e.g. https://testnet.binance.vision or http://127.0.0.1:PORT"
        )
    return value.strip().rstrip("/")


def access_from_env(env: Mapping[str, str], base_url: str | None) -> Access:
    """The key pair of the environment; the endpoint of ``base_url`` or the environment."""
    missing = [name for name in (KEY_VARIABLE, SECRET_VARIABLE) if not env.get(name, "").strip()]
    if missing:
        raise SetupError(
            f"{' and '.join(missing)} not set: export the account's API key and secret, "
            "or read a deployed stack's with --stack NAME"
        )
    if base_url is not None:
        url = checked_base_url(base_url, "--base-url")
    elif env.get(URL_VARIABLE, "").strip():
        url = checked_base_url(env[URL_VARIABLE], URL_VARIABLE)
    else:
        url = ""
    return Access(
        url, env[KEY_VARIABLE].strip(), env[SECRET_VARIABLE].strip(), f"key from ${KEY_VARIABLE}"
    )


@contextlib.contextmanager
def _region(region: str | None) -> Iterator[None]:
    """The default AWS region set to ``region`` for what runs inside (the secret reader
    takes no region of its own)."""
    if not region:
        yield
        return
    names = ("AWS_DEFAULT_REGION", "AWS_REGION")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, region))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cloudformation_client(region: str | None) -> Any:
    import boto3

    return boto3.client("cloudformation", region_name=region)


def access_from_stack(stack: str, *, region: str | None, base_url: str | None) -> Access:
    """The key pair in ``stack``'s Binance secret, the endpoint of its ``BinanceBaseUrl``."""
    from aws_lambda_powertools.utilities.parameters.exceptions import (
        GetParameterError,
        GetSecretError,
        TransformParameterError,
    )
    from botocore.exceptions import BotoCoreError, ClientError

    from flipbot.adapters.aws import read_secret

    try:
        cfn = cloudformation_client(region)
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise SetupError(f"stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])
    }
    arn = outputs.get("BinanceSecretArn")
    if not arn:
        raise SetupError(
            f"stack {stack}: output BinanceSecretArn not found (is it a flipbot stack?)"
        )
    if base_url is not None:
        url = checked_base_url(base_url, "--base-url")
    elif parameters.get("BinanceBaseUrl", "").strip():
        url = checked_base_url(parameters["BinanceBaseUrl"], f"stack {stack}: BinanceBaseUrl")
    else:
        url = ""
    try:
        with _region(region or cfn.meta.region_name):
            creds = read_secret(arn, "api_key", "api_secret")
    except (
        ConfigurationError,
        GetParameterError,
        GetSecretError,
        TransformParameterError,
        BotoCoreError,
        ClientError,
    ) as exc:
        raise SetupError(f"stack {stack}: reading its Binance secret failed: {exc}") from exc
    if PLACEHOLDER in (creds["api_key"], creds["api_secret"]):
        raise SetupError(
            f"stack {stack}: its Binance secret {arn} still holds the template's placeholder "
            f"{PLACEHOLDER}: set the key pair with aws secretsmanager put-secret-value "
            f'--secret-id {arn} --secret-string \'{{"api_key":"...","api_secret":"..."}}\''
        )
    return Access(url, creds["api_key"], creds["api_secret"], f"stack {stack}'s secret")


# --- asking -------------------------------------------------------------------------------
def binance_client(access: Access) -> Any:
    """A python-binance ``Client`` for ``access`` (as the functions build theirs); a
    loopback endpoint is never reached through a proxy from the environment."""
    from binance.client import Client

    client = Client(access.api_key, access.api_secret, ping=False)
    if access.base_url:
        client.API_URL = access.base_url + "/api"
        if urlsplit(access.base_url).hostname in _LOOPBACK:
            client.session.trust_env = False
    return client


def read_account(exchange: Any, *, now_ms: int) -> Account:
    """Balances and every open order through ``exchange``
    (:class:`~flipbot.adapters.binance_exchange.BinanceExchange`); one retry after a
    clock skew, which the adapter has resynced by then."""
    try:
        balances, orders = exchange.balances(), exchange.open_orders()
    except ClockSkew:
        balances, orders = exchange.balances(), exchange.open_orders()
    return Account(
        balances=[b for _, b in sorted(balances.items()) if b.free or b.locked],
        orders=sorted(orders, key=lambda o: (o.symbol, o.price, o.client_order_id)),
        time_ms=now_ms,
    )


# --- showing ------------------------------------------------------------------------------
def plain(value: Decimal) -> str:
    """Digits without trailing zeros or an exponent: ``981``, ``0.0015``."""
    return format(value.normalize(), "f") if value else "0"


def age(ms: int) -> str:
    """``42s``, ``5m 03s``, ``2h 07m``, ``3d 04h``."""
    seconds = max(ms, 0) // 1000
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if seconds < 60:
        return f"{seconds}s"
    if minutes < 60:
        return f"{minutes}m {seconds % 60:02d}s"
    if hours < 24:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24:02d}h"


def as_json(account: Account, access: Access) -> dict[str, Any]:
    return {
        "endpoint": access.endpoint,
        "credentials": access.label,
        "time_ms": account.time_ms,
        "balances": [
            {
                "asset": b.asset,
                "free": plain(b.free),
                "locked": plain(b.locked),
                "total": plain(b.total),
            }
            for b in account.balances
        ],
        "open_orders": [
            {
                "symbol": o.symbol,
                "side": str(o.side),
                "price": plain(o.price),
                "quantity": plain(o.orig_qty),
                "filled": plain(o.executed_qty),
                "status": str(o.status),
                "client_order_id": o.client_order_id,
                "order_id": o.order_id,
                "placed_ms": o.placed_ms,
                "age_seconds": (account.time_ms - o.placed_ms) // 1000 if o.placed_ms else None,
            }
            for o in account.orders
        ],
    }


def render(account: Account, access: Access) -> str:
    lines = [
        f"account at {access.endpoint} ({access.label}), {stamp(account.time_ms)} UTC",
        "",
    ]
    if account.balances:
        lines.append(f"balances ({len(account.balances)}):")
        lines.append(
            text_table(
                ["asset", "free", "locked", "total"],
                [
                    [b.asset, plain(b.free), plain(b.locked), plain(b.total)]
                    for b in account.balances
                ],
            )
        )
    else:
        lines.append("balances: none (every asset is zero)")
    lines.append("")
    if not account.orders:
        lines.append("open orders: none")
        return "\n".join(lines)
    lines.append(f"open orders ({len(account.orders)}):")
    rows = [
        [
            o.symbol,
            str(o.side),
            plain(o.price),
            plain(o.orig_qty),
            plain(o.executed_qty),
            o.client_order_id,
            age(account.time_ms - o.placed_ms) if o.placed_ms else "-",
        ]
        for o in account.orders
    ]
    lines.append(
        text_table(["symbol", "side", "price", "qty", "filled", "client order id", "age"], rows)
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from flipbot.adapters.binance_exchange import BinanceExchange

    try:
        if args.stack:
            access = access_from_stack(args.stack, region=args.region, base_url=args.base_url)
        else:
            access = access_from_env(os.environ, args.base_url)
    except SetupError as exc:
        print(f"flipbot account: {exc}", file=sys.stderr)
        return 2
    try:
        account = read_account(
            BinanceExchange(binance_client(access)), now_ms=time.time_ns() // 1_000_000
        )
    except FlipbotError as exc:
        print(f"flipbot account: {access.endpoint}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_json(account, access), indent=2))
    else:
        print(render(account, access))
    return 0
