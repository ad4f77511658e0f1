"""What many symbols cost the twin and AWS: one day replayed with 1, 5 and 20 symbols.

Each replay runs the whole digital twin in a child process of its own (so that its peak
memory is its own), on the bundled sample's correlated markets (one per symbol, each with
its pair's tick and lot step), 100 USDC of balance a symbol. Figures:

* ``symbols_1_day_s``, ``symbols_5_day_s``, ``symbols_20_day_s``: each replay's wall time;
* ``aws_calls_per_cycle``: every AWS call the stack's roles made (functions, state
  machine, listener) over the 20-symbol day, divided by its cycles completed;
  ``details.runs`` has each run's, split by service and by operation. A count, so it does
  not drift with the machine's load;
* ``peak_memory_mb``: the 20-symbol child's peak resident memory;
* ``bill_per_symbol_usd``: the modelled monthly AWS bill (``flipbot cost --symbols 20``)
  at the 20-symbol day's cycle rate, without AI, divided by 20; ``details.runs`` has each
  run's, with AI too.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, table, write_result

TEMPLATE = ROOT / "template.yaml"
HOURS = 24
RUNS = (1, 5, 20)
#: the symbols of the runs, the first N of them (USDC pairs; the sample gives the known
#: ones their own price, tick and lot step, the others a 10 USDC pair's)
SYMBOLS = (
    "TRUMPUSDC",
    "BTCUSDC",
    "ETHUSDC",
    "SOLUSDC",
    "BNBUSDC",
    "DOGEUSDC",
    "XRPUSDC",
    "ADAUSDC",
    "LINKUSDC",
    "AVAXUSDC",
    "DOTUSDC",
    "LTCUSDC",
    "SUIUSDC",
    "NEARUSDC",
    "ATOMUSDC",
    "UNIUSDC",
    "APTUSDC",
    "ARBUSDC",
    "FILUSDC",
    "AAVEUSDC",
)


def _child(symbols: int) -> int:
    """The measured replay of ``symbols`` symbols; prints its figures as JSON."""
    from decimal import Decimal

    from flipbot_dev.replay.sample import generate_markets
    from flipbot_dev.twin import iam
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    calls: Counter[str] = Counter()
    check = iam.Authorizer.check

    def counted(self: iam.Authorizer, service: str, operation: str, params: object) -> None:
        if self.current() is not None:
            calls[f"{service}:{operation}"] += 1
        check(self, service, operation, params)  # type: ignore[arg-type]

    iam.Authorizer.check = counted  # type: ignore[method-assign]
    home, *others = generate_markets(SYMBOLS[:symbols], seed=7, hours=HOURS).values()
    started = time.perf_counter()
    report = run_replay(
        ReplayConfig(
            template=TEMPLATE,
            data=home,
            others=tuple(others),
            symbol=home.symbol,
            quote_balance=Decimal(100 * symbols),
            progress=False,
        ),
        out=io.StringIO(),
    )
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "wall_s": wall,
                "events": report["market_events"],
                "cycles": report["cycles_completed"],
                "calls": dict(calls),
                "invariants_ok": all(report["invariants"].values()),
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )
    return 0


def _bill(cycles_per_day: float, symbols: int, *, ai: bool) -> float:
    """The modelled monthly bill of one symbol, among ``symbols``."""
    from flipbot_dev.commands.cost import (
        Assumptions,
        ai_line,
        deployment_from_template,
        model,
        totals,
    )

    deployment = deployment_from_template(TEMPLATE)
    a = Assumptions(cycles_per_day=cycles_per_day, symbols=symbols, ai=ai)
    aws, _ = totals(model(deployment, a))
    return round((aws + (ai_line(deployment, a).usd if ai else 0.0)) / symbols, 2)


def _measure(symbols: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--child", str(symbols)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    measured: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return measured


def _run_figures(symbols: int, measured: dict[str, Any]) -> dict[str, Any]:
    cycles = max(1, int(measured["cycles"]))
    calls: dict[str, int] = measured["calls"]
    by_service: Counter[str] = Counter()
    for name, n in calls.items():
        by_service[name.split(":")[0]] += n
    per_symbol_day = measured["cycles"] * 24 / HOURS / symbols
    return {
        "symbols": symbols,
        "wall_s": round(measured["wall_s"], 2),
        "market_events": measured["events"],
        "cycles": measured["cycles"],
        "invariants_ok": measured["invariants_ok"],
        "peak_memory_mb": round(measured["peak_kb"] / 1024, 1),
        "aws_calls_per_cycle": round(sum(calls.values()) / cycles, 1),
        "calls_by_service_per_cycle": {
            s: round(n / cycles, 1) for s, n in by_service.most_common()
        },
        "calls_per_cycle": {
            k: round(n / cycles, 1) for k, n in sorted(calls.items(), key=lambda kv: -kv[1])
        },
        "bill_per_symbol_usd": _bill(per_symbol_day, symbols, ai=False),
        "bill_per_symbol_with_ai_usd": _bill(per_symbol_day, symbols, ai=True),
    }


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--child"]:
        return _child(int(args[1]))
    runs = {n: _run_figures(n, _measure(n)) for n in RUNS}
    last = runs[RUNS[-1]]
    figures = {
        **{f"symbols_{n}_day_s": runs[n]["wall_s"] for n in RUNS},
        "aws_calls_per_cycle": last["aws_calls_per_cycle"],
        "peak_memory_mb": last["peak_memory_mb"],
        "bill_per_symbol_usd": last["bill_per_symbol_usd"],
    }
    details = {"runs": {str(n): run for n, run in runs.items()}}
    path = write_result("scale", figures, unit="mixed", details=details)
    print(table(["figure", "value"], [(k, str(v)) for k, v in figures.items()]))
    print(
        table(
            ["symbols", "day s", "events", "cycles", "calls/cycle", "MB", "USD/symbol"],
            [
                (
                    str(n),
                    str(r["wall_s"]),
                    f"{r['market_events']:,}",
                    str(r["cycles"]),
                    str(r["aws_calls_per_cycle"]),
                    str(r["peak_memory_mb"]),
                    str(r["bill_per_symbol_usd"]),
                )
                for n, r in runs.items()
            ],
        )
    )
    print(f"written: {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
