"""Where ``flipbot status``, ``history`` and ``pnl`` read the books from.

* ``--run DIR`` — a local replay: the tables it left in ``DIR/tables/*.json``
  (``DIR`` may also be the ``tables`` directory itself);
* ``--stack NAME`` — a deployed stack: the table names from its CloudFormation outputs
  (``CyclesTableName`` ...), the symbols from its ``Symbols`` parameter (or ``Symbol``),
  read with the default AWS credentials (``--region`` or the configured region).

Books hold every symbol's rows; ``--symbol SYMBOL`` keeps one symbol's: its cycles,
their orders, fills, consultations and trades.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
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
    symbol: str  # the symbol shown: the one symbol, or every symbol joined by commas
    label: str
    report: dict[str, Any] | None = None  # the replay's report.json, when there is one
    symbols: tuple[str, ...] = ()  # every symbol the books are of (the run's, the stack's)

    def only(self, symbol: str) -> Source:
        """The books of ``symbol`` alone; raises :class:`BooksUnavailable` naming the
        symbols there are when ``symbol`` is not one of them."""
        known = self.symbols or (self.symbol,)
        if symbol not in known:
            raise BooksUnavailable(
                f"--symbol {symbol}: not a symbol of {self.label} (it has {', '.join(known)})"
            )
        books = self.books
        cycles = [c for c in books.cycles if c.symbol == symbol]
        ids = {c.cycle_id for c in cycles}
        return replace(
            self,
            symbol=symbol,
            symbols=(symbol,),
            books=Books(
                cycles=cycles,
                orders=[o for o in books.orders if o.symbol == symbol],
                fills=[f for f in books.fills if f.symbol == symbol],
                trades=[t for t in books.trades if t.symbol == symbol],
                consultations=[c for c in books.consultations if c.cycle_id in ids],
            ),
        )


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--run", default=None, help=f"a local replay's output directory (default {DEFAULT_RUN})"
    )
    where.add_argument("--stack", help="a deployed stack's name (reads its DynamoDB tables)")
    parser.add_argument("--region", help="AWS region of --stack (default: configured)")
    parser.add_argument(
        "--symbol", type=str.upper, help="one symbol's books (default: every symbol's)"
    )


def load_source(args: argparse.Namespace) -> Source:
    """The books named by ``--run`` / ``--stack`` (``--symbol``'s alone when given);
    raises :class:`BooksUnavailable`."""
    if getattr(args, "stack", None):
        source = load_stack(args.stack, region=getattr(args, "region", None))
    else:
        source = load_run(Path(getattr(args, "run", None) or DEFAULT_RUN))
    symbol = getattr(args, "symbol", None)
    return source.only(symbol) if symbol else source


def _shown(symbols: list[str]) -> tuple[str, tuple[str, ...]]:
    """The symbol shown for ``symbols`` (each may be a comma-separated list, as a
    several-symbol report's ``symbol`` is) and the symbols, each once, in their order."""
    unique = tuple(dict.fromkeys(p for s in symbols for p in s.split(",") if p))
    return ",".join(unique), unique


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
    listed = [(report or {}).get("symbol") or "", *(report or {}).get("symbols", {})]
    symbol, symbols = _shown(listed + [c.symbol for c in books.cycles])
    return Source(books, symbol, f"run {run_dir}", report, symbols)


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
    symbol, symbols = _shown(
        [parameters.get("Symbol") or "TRUMPUSDC", *parameters.get("Symbols", "").split(",")]
    )
    if repositories is None:
        from flipbot.adapters.dynamodb import repositories as dynamo_repositories

        repositories = dynamo_repositories
    from pynamodb.exceptions import PynamoDBException

    try:
        books = read_tables(repositories(tables, region=region or cfn.meta.region_name), symbols)
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        raise BooksUnavailable(f"stack {stack}: reading the tables failed: {exc}") from exc
    symbol, symbols = _shown([*symbols, *(c.symbol for c in books.cycles)])
    return Source(books, symbol, f"stack {stack}", symbols=symbols)
