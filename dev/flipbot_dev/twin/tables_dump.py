"""The books of a run as JSON files, so that a finished replay can still be inspected.

:func:`dump_tables` writes ``cycles.json``, ``orders.json``, ``fills.json``,
``trades.json`` and ``consultations.json``: one JSON array per table, each element the
item's body exactly as the DynamoDB adapter stores it, in a stable order.
:func:`load_tables` reads them back as records (``flipbot status``, ``history`` and
``pnl`` with ``--run``); :func:`read_tables` reads live tables the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flipbot.adapters.dynamodb import (
    body_of,
    consultation_from_body,
    cycle_from_body,
    fill_from_body,
    order_from_body,
    trade_from_body,
)
from flipbot.ports import Repositories
from flipbot_dev.metrics import Books

TABLES = ("cycles", "orders", "fills", "trades", "consultations")
"""The tables written, one ``<name>.json`` each."""


def read_tables(repos: Repositories, symbols: Sequence[str]) -> Books:
    """Every row of the five tables, in a stable order (the trades table is read by
    symbol: the trades of ``symbols`` and of every symbol a cycle names, one no longer
    traded too)."""
    cycles = sorted(repos.cycles.all(), key=lambda c: c.cycle_id)
    symbols = [*symbols, *(c.symbol for c in cycles)]
    return Books(
        cycles=cycles,
        orders=sorted(repos.orders.all(), key=lambda o: (o.created_ms, o.client_order_id)),
        fills=sorted(repos.fills.all(), key=lambda f: (f.time_ms, f.order_id, f.trade_id)),
        trades=sorted(
            (t for symbol in dict.fromkeys(symbols) for t in repos.trades.all(symbol)),
            key=lambda t: (t.closed_ms, t.symbol, t.cycle_id),
        ),
        consultations=sorted(
            repos.consultations.all(), key=lambda c: (c.time_ms, c.consultation_id)
        ),
    )


def dump_tables(repos: Repositories, symbols: Sequence[str], out_dir: Path) -> list[Path]:
    """Write the five tables (the trades of ``symbols``) into ``out_dir``; return the
    files written."""
    books = read_tables(repos, symbols)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        rows = [body_of(row) for row in getattr(books, name)]
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def load_tables(directory: Path) -> Books:
    """The tables written by :func:`dump_tables` in ``directory``.

    Raises ``FileNotFoundError`` naming the first missing file.
    """

    def rows(name: str) -> list[dict[str, Any]]:
        path = directory / f"{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such table dump")
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON array")
        return data

    return Books(
        cycles=[cycle_from_body(r) for r in rows("cycles")],
        orders=[order_from_body(r) for r in rows("orders")],
        fills=[fill_from_body(r) for r in rows("fills")],
        trades=[trade_from_body(r) for r in rows("trades")],
        consultations=[consultation_from_body(r) for r in rows("consultations")],
    )
