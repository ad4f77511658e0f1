"""The stop-loss through the whole twin: template, state machine (PlaceSell times out,
CheckSell, CancelSell), handlers, paper exchange.

The market: a slow decline that makes MA(9) fall under MA(21), a rise that crosses it back
up (``ma-cross`` buys), then a drop of about 4 % and a flat tail. ``ma-cross`` brings a 1 %
stop-loss; with ``StopLoss=off`` the same market leaves the sell resting at the floor.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from flipbot.domain.entities import OrderRecord
from flipbot.domain.model import Side
from flipbot_dev.replay.data import load_market_data
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import Books, load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

START_MS = 1_737_331_200_000
HEADER = (
    "open_time_ms,open,high,low,close,volume,close_time_ms,quote_volume,trades,"
    "taker_buy_base,taker_buy_quote"
)


def _drop_after_cross() -> list[float]:
    path = [10.60 - 0.60 * i / 120 for i in range(120)]  # bearish: MA9 under MA21
    path += [10.00 + 0.30 * i / 25 for i in range(25)]  # golden cross: ma-cross buys
    path += [10.30 - 0.40 * i / 30 for i in range(30)]  # a 4 % drop
    path += [9.90 + (0.03 if i % 2 else -0.03) for i in range(35)]  # flat
    return path


def _write_klines(path: Path, closes: list[float]) -> Path:
    rows, previous = [HEADER], closes[0]
    for i, close in enumerate(closes):
        high, low = max(previous, close) + 0.02, min(previous, close) - 0.02
        t = START_MS + i * 60_000
        rows.append(
            f"{t},{previous:.2f},{high:.2f},{low:.2f},{close:.2f},500.000,{t + 59_999},"
            "5000.00,50,250.000,2500.00"
        )
        previous = close
    path.write_text("\n".join(rows) + "\n")
    return path


def _run(tmp: Path, **parameters: str) -> tuple[dict[str, Any], Books]:
    data = load_market_data(
        _write_klines(tmp / "drop.csv", _drop_after_cross()), symbol="TRUMPUSDC"
    )
    out = tmp / "run"
    config = ReplayConfig(
        template=TEMPLATE,
        data=data,
        symbol="TRUMPUSDC",
        out_dir=out,
        decider="ma-cross",
        progress=False,
        parameters=parameters,
    )
    report = run_replay(config, out=io.StringIO())
    return report, load_tables(out / "tables")


def _sells(tables: Books) -> list[OrderRecord]:
    return sorted((o for o in tables.orders if o.side is Side.SELL), key=lambda o: o.created_ms)


def test_given_ma_cross_and_a_drop_after_the_buy_then_the_stop_loss_sells_below_the_floor(
    tmp_path: Path,
) -> None:
    report, tables = _run(tmp_path)
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"
    assert report["invariants"]["stop_loss_exits_justified"] is True
    assert report["cycles_completed"] >= 1
    assert report["stop_loss_exits"] >= 1
    (cycle,) = [c for c in tables.cycles if c.cycle_id == "c000001"]
    entry, floor = cycle.entry_price, cycle.floor_price
    sells = _sells(tables)
    # The first sell rested at or above the floor until the stop fired; it was canceled
    # by the state machine (CheckSell -> CancelSell), never filled.
    first = sells[0]
    assert first.exit_reason == ""
    assert first.price >= floor
    assert first.status == "CANCELED"
    # The exit that filled is a stop-loss, under the floor and under the stop itself.
    filled = [o for o in sells if o.status == "FILLED" and o.cycle_id == "c000001"]
    assert len(filled) == 1
    assert filled[0].exit_reason == "STOP_LOSS"
    assert filled[0].price < entry * Decimal("0.99") < floor
    # Every stop-loss exit has its consultation: decided by the rule, with the evidence.
    audit = {c.consultation_id: c for c in tables.consultations}
    for order in (o for o in sells if o.exit_reason == "STOP_LOSS"):
        record = audit[order.consultation_id]
        assert record.verdict == "PLACE:STOP_LOSS"
        assert record.decided_by == "stop-loss"
        assert Decimal(record.extra["last_price"]) <= Decimal(record.extra["stop_price"])
    (trade,) = [t for t in tables.trades if t.cycle_id == "c000001"]
    assert trade.realized_pnl < 0  # a loss taken, as configured


def test_given_the_stop_loss_turned_off_then_the_same_drop_leaves_the_sell_at_the_floor(
    tmp_path: Path, capsys: Any
) -> None:
    from flipbot_dev.cli import main

    data = _write_klines(tmp_path / "drop.csv", _drop_after_cross())
    out = tmp_path / "cli"
    args = ["replay", "--data", str(data), "--symbol", "TRUMPUSDC", "--strategy", "ma-cross"]
    code = main([*args, "--param", "StopLoss=off", "--quiet", "--out", str(out)])
    assert code == 0  # every invariant holds
    assert "stop-loss exits 0" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["stop_loss_exits"] == 0
    assert report["cycles_completed"] == 0
    tables = load_tables(out / "tables")
    (cycle,) = tables.cycles
    sells = _sells(tables)
    assert len(sells) == 1  # placed once, never re-checked, never replaced
    assert sells[0].status == "NEW"
    assert sells[0].price >= cycle.floor_price


def test_given_a_malformed_replay_param_then_the_replay_refuses_naming_it(
    tmp_path: Path, capsys: Any
) -> None:
    from flipbot_dev.cli import main

    assert main(["replay", "--param", "StopLoss", "--out", str(tmp_path)]) == 2
    assert "--param 'StopLoss': expected KEY=VALUE" in capsys.readouterr().err
