"""DynamoDB items read per closed cycle over a month: does a cycle get dearer as the stack
ages?

A 30-day replay of the bundled sample (seeded) through the twin, which counts every item
the functions read (``report["dynamodb_reads"]``, by virtual day). Figures:

* ``items_per_cycle_first_week`` and ``items_per_cycle_last_week``: items read by the
  functions a cycle runs (consult, place, order updates, cancel, record) in days 1-7 and
  24-30, over the cycles closed in the same days (the first week is the baseline: the
  ratio says how much dearer a cycle became);
* ``reconcile_items_per_day_first_week`` and ``..._last_week``: what the scheduled
  reconcile reads a day, whether or not a cycle closes (it reads the open orders by
  their index, so it should stay flat);
* ``items_per_read_first_week`` and ``..._last_week``: items read per read request by
  the cycle's functions, the plainest test of a read that grows with history (a scan
  does, a read by key does not), whatever shape the market gives the cycles;
* ``replay_s``: the wall time of the whole replay.

A count does not drift with the machine's load; a code path that scans history would
show as a ratio well above 1.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from bench.common import ROOT, table, write_result

DAYS = 30


def main() -> int:
    from flipbot.replay.sample import generate_sample
    from flipbot.twin.runner import ReplayConfig, run_replay

    data = generate_sample(seed=7, hours=24 * DAYS)
    started = time.perf_counter()
    report = run_replay(
        ReplayConfig(data=data, symbol="TRUMPUSDC", progress=False), out=io.StringIO()
    )
    elapsed = time.perf_counter() - started
    reads = report["dynamodb_reads"]
    closed = reads["cycles_closed_by_day"]
    per_principal = reads["by_principal_by_day"]
    reconcile = per_principal.get("ReconcileFunction", [0] * DAYS)
    cycle_paths = [
        sum(days)
        for days in zip(
            *(v for k, v in per_principal.items() if k != "ReconcileFunction"), strict=True
        )
    ]
    requests = [
        sum(days)
        for days in zip(
            *(
                v
                for k, v in reads["requests_by_principal_by_day"].items()
                if k != "ReconcileFunction"
            ),
            strict=True,
        )
    ]
    first, last = slice(0, 7), slice(DAYS - 7, DAYS)

    def per_read(days: slice) -> float:
        count = sum(requests[days])
        return sum(cycle_paths[days]) / count if count else float("nan")

    def per_cycle(days: slice) -> float:
        cycles = sum(closed[days])
        return sum(cycle_paths[days]) / cycles if cycles else float("nan")

    figures = {
        "items_per_cycle_first_week": round(per_cycle(first), 2),
        "items_per_cycle_last_week": round(per_cycle(last), 2),
        "items_per_read_first_week": round(per_read(first), 3),
        "items_per_read_last_week": round(per_read(last), 3),
        "reconcile_items_per_day_first_week": round(sum(reconcile[first]) / 7, 2),
        "reconcile_items_per_day_last_week": round(sum(reconcile[last]) / 7, 2),
        "replay_s": round(elapsed, 2),
    }
    path = write_result(
        "reads",
        figures,
        unit="DynamoDB items read per closed cycle (replay_s: seconds)",
        baseline="items_per_cycle_first_week",
        targets={"items_per_cycle_last_week": 1.2},
        details={
            "days": DAYS,
            "cycles_completed": report["cycles_completed"],
            "items_read": reads["items"],
            "by_principal": reads["by_principal"],
            "by_principal_by_day": per_principal,
            "requests_by_principal_by_day": reads["requests_by_principal_by_day"],
            "by_day": reads["by_day"],
            "cycles_closed_by_day": closed,
            "invariants_ok": all(report["invariants"].values()),
        },
    )
    print(table(["figure", "value"], [(k, f"{v:g}") for k, v in figures.items()]))
    print(f"written: {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
