"""DynamoDB items read per closed cycle: does a cycle get dearer as the stack ages?

The twin counts every item the functions read (``report["dynamodb_reads"]``, by virtual
day and principal). Two measures:

* **the month**: a 30-day replay of the bundled sample (seeded). ``items_per_cycle_first
  _week`` and ``..._last_week`` are the items read by the functions a cycle runs
  (consult, place, order updates, cancel, record) in days 1-7 and 24-30, over the cycles
  closed in the same days. The sample's weeks differ: a week whose cycles wait longer
  (more consultations, more order updates) reads more per cycle whatever the stack's
  age. ``items_per_read_...`` (items per read request: a scan grows with history, a read
  by key does not) and ``reconcile_items_per_day_...`` (the scheduled reconcile, which
  reads open orders by their index) do not depend on the market's shape;
* **the same week, with and without a past**: the sample's first week replayed on a fresh
  stack, and again on a stack whose tables already hold the closed cycles of 23 days of
  the same sample (their orders, fills, trades and consultations). The market and the
  cycles are the same; what differs is the history alone, so
  ``same_week_with_history_items_per_cycle`` against ``same_week_fresh_items_per_cycle``
  (the baseline) is the ratio that says whether history makes a cycle dearer.

``replay_s`` is the wall time of the 30-day replay. Counts do not drift with the
machine's load.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, table, write_result

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

DAYS = 30
HISTORY_DAYS = 23
DAY_MS = 86_400_000
SYMBOL = "TRUMPUSDC"


def past_of(tables: Path, into: Path) -> Path:
    """The closed cycles of a run's table dump and everything of theirs, their cycle ids
    moved to ``c9.....`` so that a new run's ``c000001`` starts clear of them."""
    moved = re.compile(r"(?<![0-9a-z])c0(\d{5})")
    cycles = json.loads((tables / "cycles.json").read_text())
    kept = {c["cycle_id"] for c in cycles if c["state"] in ("COMPLETED", "STOPPED")}
    orders = json.loads((tables / "orders.json").read_text())
    own = {o["client_order_id"] for o in orders if o.get("cycle_id") in kept}
    into.mkdir(parents=True, exist_ok=True)
    for name in ("cycles", "orders", "fills", "trades", "consultations"):
        rows = json.loads((tables / f"{name}.json").read_text())
        if name == "fills":
            rows = [r for r in rows if r["client_order_id"] in own]
        else:
            rows = [r for r in rows if r.get("cycle_id") in kept]
        (into / f"{name}.json").write_text(moved.sub(r"c9\1", json.dumps(rows)))
    return into


def run_figures(report: dict[str, Any], past_cycles: int = 0) -> dict[str, float]:
    """Items read by a cycle's functions per cycle the run closed (``past_cycles`` of its
    trades rows came with its history), and per read request."""
    reads = report["dynamodb_reads"]
    items = sum(v for k, v in reads["by_principal"].items() if k != "ReconcileFunction")
    requests = sum(
        sum(days)
        for k, days in reads["requests_by_principal_by_day"].items()
        if k != "ReconcileFunction"
    )
    cycles = report["cycles_completed"] - past_cycles
    return {
        "items_per_cycle": round(items / cycles, 2) if cycles else float("nan"),
        "items_per_read": round(items / requests, 3) if requests else float("nan"),
        "cycles": cycles,
    }


def month_figures(report: dict[str, Any]) -> dict[str, float]:
    """Items per closed cycle and per read request, first and last week; reconcile's a day."""
    reads = report["dynamodb_reads"]
    closed = reads["cycles_closed_by_day"]
    per_principal = reads["by_principal_by_day"]
    reconcile = per_principal.get("ReconcileFunction", [0] * DAYS)

    def cycle_paths(by_principal: dict[str, list[int]]) -> list[int]:
        return [
            sum(day)
            for day in zip(
                *(v for k, v in by_principal.items() if k != "ReconcileFunction"), strict=True
            )
        ]

    items = cycle_paths(per_principal)
    requests = cycle_paths(reads["requests_by_principal_by_day"])
    first, last = slice(0, 7), slice(DAYS - 7, DAYS)

    def per_read(days: slice) -> float:
        count = sum(requests[days])
        return sum(items[days]) / count if count else float("nan")

    def per_cycle(days: slice) -> float:
        cycles = sum(closed[days])
        return sum(items[days]) / cycles if cycles else float("nan")

    return {
        "items_per_cycle_first_week": round(per_cycle(first), 2),
        "items_per_cycle_last_week": round(per_cycle(last), 2),
        "items_per_read_first_week": round(per_read(first), 3),
        "items_per_read_last_week": round(per_read(last), 3),
        "reconcile_items_per_day_first_week": round(sum(reconcile[first]) / 7, 2),
        "reconcile_items_per_day_last_week": round(sum(reconcile[last]) / 7, 2),
        "cycles_first_week": sum(closed[first]),
        "cycles_last_week": sum(closed[last]),
    }


def _replay(data: Any, **config: Any) -> dict[str, Any]:
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    return run_replay(
        ReplayConfig(template=TEMPLATE, data=data, symbol=SYMBOL, progress=False, **config),
        out=io.StringIO(),
    )


def main() -> int:
    from flipbot_dev.replay.sample import generate_sample

    data = generate_sample(seed=7, hours=24 * DAYS)
    started = time.perf_counter()
    month = _replay(data)
    elapsed = time.perf_counter() - started
    figures: dict[str, float] = dict(month_figures(month))
    week = data.between(data.first_ms, data.first_ms + 7 * DAY_MS)
    with tempfile.TemporaryDirectory() as tmp:
        past = data.between(data.first_ms, data.first_ms + HISTORY_DAYS * DAY_MS)
        _replay(past, out_dir=Path(tmp) / "past")
        history = past_of(Path(tmp) / "past" / "tables", Path(tmp) / "history")
        history_rows = {
            name: len(json.loads((history / f"{name}.json").read_text()))
            for name in ("cycles", "orders", "fills", "trades", "consultations")
        }
        runs = {"fresh": _replay(week), "with_history": _replay(week, history=history)}
    for name, run in runs.items():
        closed_before = history_rows["trades"] if name == "with_history" else 0
        figures |= {f"same_week_{name}_{k}": v for k, v in run_figures(run, closed_before).items()}
    figures["replay_s"] = round(elapsed, 2)
    reads = month["dynamodb_reads"]
    path = write_result(
        "reads",
        figures,
        unit="DynamoDB items read per closed cycle (replay_s: seconds)",
        baseline="same_week_fresh_items_per_cycle",
        targets={"same_week_with_history_items_per_cycle": 1.2},
        details={
            "days": DAYS,
            "cycles_completed": month["cycles_completed"],
            "items_read": reads["items"],
            "by_principal": reads["by_principal"],
            "by_principal_by_day": reads["by_principal_by_day"],
            "requests_by_principal_by_day": reads["requests_by_principal_by_day"],
            "by_day": reads["by_day"],
            "cycles_closed_by_day": reads["cycles_closed_by_day"],
            "history_rows": history_rows,
            "same_week_by_principal": {
                name: run["dynamodb_reads"]["by_principal"] for name, run in runs.items()
            },
            # the run with a past books cycles its paper exchange never saw: its ledger
            # invariants compare against an exchange without them, so only these count
            "invariants_ok": all(all(r["invariants"].values()) for r in (month, runs["fresh"])),
        },
    )
    print(table(["figure", "value"], [(k, f"{v:g}") for k, v in figures.items()]))
    print(f"written: {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
