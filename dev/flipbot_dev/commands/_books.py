"""Where ``flipbot status``, ``history`` and ``pnl`` read the books from.

* ``--run DIR`` — a local replay: the tables it left in ``DIR/tables/*.json``
  (``DIR`` may also be the ``tables`` directory itself);
* ``--stack NAME`` — a deployed stack: the table names from its CloudFormation outputs
  (``CyclesTableName`` ...), the symbol from its ``Symbol`` parameter, read with the
  default AWS credentials (``--region`` or the configured region).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipbot_dev.metrics import Books

DEFAULT_RUN = "out/replay"
_OUTPUT_KEYS = {
    "cycles": "CyclesTableName",
    "orders": "OrdersTableName",
    "fills": "FillsTableName",
    "trades": "TradesTableName",
    "consultations": "ConsultationsTableName",
    "market": "MarketTableName",
}


class BooksUnavailable(Exception):
    """The books cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class Source:
    """The books and where they came from."""

    books: Books
    symbol: str
    label: str
    report: dict[str, Any] | None = None  # the replay's report.json, when there is one


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--run", default=None, help=f"a local replay's output directory (default {DEFAULT_RUN})"
    )
    where.add_argument("--stack", help="a deployed stack's name (reads its DynamoDB tables)")
    parser.add_argument("--region", help="AWS region of --stack (default: configured)")


def load_source(args: argparse.Namespace) -> Source:
    """The books named by ``--run`` / ``--stack``; raises :class:`BooksUnavailable`."""
    if getattr(args, "stack", None):
        return load_stack(args.stack, region=getattr(args, "region", None))
    return load_run(Path(getattr(args, "run", None) or DEFAULT_RUN))


def load_run(directory: Path) -> Source:
    from flipbot_dev.twin.tables_dump import load_tables

    tables = directory if (directory / "cycles.json").is_file() else directory / "tables"
    run_dir = tables.parent if tables.name == "tables" else directory
    if not (tables / "cycles.json").is_file():
        raise BooksUnavailable(
            f"{directory}: no tables of a replay here (expected {tables}/cycles.json); "
            "run `flipbot replay --out DIR` first"
        )
    try:
        books = load_tables(tables)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BooksUnavailable(f"{tables}: unreadable table dump: {exc}") from exc
    report = None
    report_path = run_dir / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
    symbol = (report or {}).get("symbol") or next((c.symbol for c in books.cycles), "")
    return Source(books, symbol, f"run {run_dir}", report)


def stack_tables(outputs: dict[str, str], stack: str) -> dict[str, str]:
    """Table names from a stack's outputs; raises :class:`BooksUnavailable` naming gaps."""
    missing = [key for key in _OUTPUT_KEYS.values() if not outputs.get(key)]
    if missing:
        raise BooksUnavailable(
            f"stack {stack}: outputs {', '.join(missing)} not found (is it a flipbot stack?)"
        )
    return {name: outputs[key] for name, key in _OUTPUT_KEYS.items()}


def load_stack(
    stack: str, *, region: str | None = None, cloudformation: Any = None, repositories: Any = None
) -> Source:
    """The books of the deployed stack ``stack`` (see the module docstring)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from flipbot.settings import Tables
    from flipbot_dev.twin.tables_dump import read_tables

    try:
        cfn = cloudformation or boto3.client("cloudformation", region_name=region)
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise BooksUnavailable(f"stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])
    }
    tables = Tables(**stack_tables(outputs, stack))
    symbol = parameters.get("Symbol") or "TRUMPUSDC"
    if repositories is None:
        from flipbot.adapters.dynamodb import repositories as dynamo_repositories

        repositories = dynamo_repositories
    from pynamodb.exceptions import PynamoDBException

    try:
        books = read_tables(repositories(tables, region=region or cfn.meta.region_name), symbol)
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        raise BooksUnavailable(f"stack {stack}: reading the tables failed: {exc}") from exc
    return Source(books, symbol, f"stack {stack}")
