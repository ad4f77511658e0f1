"""No silent halt, end to end: an execution stopped by hand, a position withdrawn from the
account and a second execution of one cycle, each in a short replay of the sample."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _replay(hours: float, minutes: int, action: str, out: Path | None = None) -> dict[str, Any]:
    config = ReplayConfig(
        template=TEMPLATE,
        data=generate_sample(seed=7, hours=hours),
        symbol="TRUMPUSDC",
        progress=False,
        interventions=((minutes, action),),
        out_dir=out,
    )
    return run_replay(config, out=io.StringIO())


def _assert_invariants(report: dict[str, Any]) -> None:
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"
    assert "no_silent_halt" in report["invariants"]


def test_given_an_execution_stopped_by_hand_mid_sell_then_the_cycle_stops_with_an_alarm() -> None:
    # Given: three hours in, c000003's sell rests; its execution is stopped in the console
    report = _replay(6, 180, "stop_execution")
    assert report["by_hand"][0].endswith("stop_execution: stopped c000003")
    # Then: reconcile stops the cycle with the reason, and the alarm fires; the cycle
    # holds the 0.373626 TRUMP its buy brought and the 0.000243 c000002 left it
    assert report["cycles_stopped"] == {
        "c000003": "execution stopped by hand (c000003); the cycle holds 0.37386900 TRUMP"
    }
    assert "CycleHaltedAlarm" in report["alarms"]["fired"]
    assert report["executions"]["running"] == []
    # and every invariant holds, old and new: nothing of it rests, every fill is booked
    _assert_invariants(report)


def test_given_the_base_withdrawn_mid_cycle_then_the_cycle_stops_once_and_never_loops(
    tmp_path: Path,
) -> None:
    # Given: the resting sell is canceled in the app and every TRUMP withdrawn
    report = _replay(8, 200, "withdraw_base", tmp_path)
    # Then: the sell leg finds the position gone once, the cycle stops with the reason
    assert report["errors_caught"] == {"PositionGone": 1}
    # (the 0.000243 c000002 left it went too: the cycle drops that first, then finds its
    # own 0.373626 gone)
    assert report["cycles_stopped"] == {
        "c000003": "position gone from the account: held 0.37362600 TRUMP, account has 0 TRUMP"
    }
    assert "CycleHaltedAlarm" in report["alarms"]["fired"]
    # and the execution ends: no sell is tried again and again for the hours left
    assert report["executions"]["running"] == []
    assert "c000003" in report["executions"]["succeeded"]
    # three buys and their sells (re-priced from the target), none after the withdrawal
    orders = load_tables(tmp_path / "tables").orders
    withdrawn_ms = int(
        datetime.fromisoformat(report["by_hand"][0].split()[0].replace("Z", "+00:00")).timestamp()
        * 1000
    )
    assert len(orders) == report["orders_placed"] > 6
    assert sorted({o.cycle_id for o in orders if o.side == "BUY"}) == [
        "c000001",
        "c000002",
        "c000003",
    ]
    assert [o.client_order_id for o in orders if o.created_ms >= withdrawn_ms] == []
    _assert_invariants(report)


def test_given_a_second_execution_of_a_cycle_then_it_is_stopped_and_nothing_trades_twice() -> None:
    # Given: an execution of c000003 is started by hand with the cycle's own input
    report = _replay(6, 200, "start_duplicate")
    # Then: reconcile stops it; the cycle's own execution goes on
    assert report["executions"]["stopped"] == ["c000003-by-hand-1"]
    assert report["executions"]["running"] == ["c000003"]
    # and no order was placed twice, none over the cap
    _assert_invariants(report)
    assert "cycles_stopped" not in report
