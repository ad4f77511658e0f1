"""Target-first sells, re-priced toward the floor, end to end: the real template, state
machine and handlers in the twin, the offline strategy deciding, over the seeded sample."""

from __future__ import annotations

import io
from collections import defaultdict
from decimal import ROUND_CEILING, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _replay(out: Path, **parameters: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    config = ReplayConfig(
        template=TEMPLATE,
        data=generate_sample(seed=7, hours=3),
        symbol="TRUMPUSDC",
        progress=False,
        out_dir=out,
        parameters=parameters,
    )
    report = run_replay(config, out=io.StringIO())
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"
    sells: dict[str, list[Any]] = defaultdict(list)
    for order in sorted(load_tables(out / "tables").orders, key=lambda o: o.created_ms):
        if order.side == "SELL":
            sells[order.cycle_id].append(order)
    return report, sells


def test_given_the_defaults_then_each_sell_aims_at_the_target_then_steps_toward_the_floor(
    tmp_path: Path,
) -> None:
    report, sells = _replay(tmp_path)
    assert report["cycles_completed"] >= 1
    stepped = [orders for orders in sells.values() if len(orders) > 1]
    assert stepped, "no sell rested long enough to be re-priced"
    tables = load_tables(tmp_path / "tables")
    buys = {o.cycle_id: o for o in tables.orders if o.side == "BUY" and o.executed_qty > 0}
    for orders in stepped:
        prices = [o.price for o in orders]
        # the first at the target (entry x (1 + 0.2 % fees + 5 %), up to the tick) ...
        entry = buys[orders[0].cycle_id].price
        target = (entry * Decimal("1.052")).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
        assert prices[0] == target, (orders[0].client_order_id, prices[0], target)
        # ... each re-pricing lower, at most three, none under the floor
        assert all(lower < higher for higher, lower in pairwise(prices))
        assert len(orders) <= 4
        assert all(o.price >= o.floor_price > 0 for o in orders)
        assert all(o.status == "CANCELED" for o in orders[:-1])


def test_given_re_pricing_off_then_each_cycle_places_one_sell(tmp_path: Path) -> None:
    report, sells = _replay(tmp_path, SellRepriceSteps="0")
    assert report["cycles_completed"] >= 1
    assert {cycle: len(orders) for cycle, orders in sells.items()} == dict.fromkeys(sells, 1)
