"""What one symbol costs the twin and AWS: the baseline of the many-symbol scale figures.

One day of the bundled sample is replayed through the whole digital twin, in a child
process of its own so that its peak memory is its own. Figures:

* ``symbols_1_day_s``: the replay's wall time;
* ``aws_calls_per_cycle``: every AWS call the stack's roles made (functions, state
  machine, listener), divided by the cycles completed; ``details.calls_per_cycle`` splits
  it by service and operation. A count, so it does not drift with the machine's load;
* ``peak_memory_mb``: the child's peak resident memory;
* ``bill_per_symbol_usd``: the modelled monthly AWS bill (``flipbot cost``) at the
  replayed day's cycle rate, without AI; ``details.bill_with_ai_usd`` with it.

A stack trades one symbol today, so the 5- and 20-symbol figures are not measured yet.
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

from bench.common import ROOT, table, write_result

TEMPLATE = ROOT / "template.yaml"
HOURS = 24


def _child() -> int:
    """The measured replay; prints its figures as JSON."""
    from flipbot_dev.replay.sample import generate_sample
    from flipbot_dev.twin import iam
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    calls: Counter[str] = Counter()
    check = iam.Authorizer.check

    def counted(self: iam.Authorizer, service: str, operation: str, params: object) -> None:
        if self.current() is not None:
            calls[f"{service}:{operation}"] += 1
        check(self, service, operation, params)  # type: ignore[arg-type]

    iam.Authorizer.check = counted  # type: ignore[method-assign]
    data = generate_sample(seed=7, hours=HOURS)
    started = time.perf_counter()
    report = run_replay(
        ReplayConfig(template=TEMPLATE, data=data, symbol="TRUMPUSDC", progress=False),
        out=io.StringIO(),
    )
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cycles": report["cycles_completed"],
                "calls": dict(calls),
                "invariants_ok": all(report["invariants"].values()),
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )
    return 0


def _bill(cycles_per_day: float, *, ai: bool) -> float:
    from flipbot_dev.commands.cost import (
        Assumptions,
        ai_line,
        deployment_from_template,
        model,
        totals,
    )

    deployment = deployment_from_template(TEMPLATE)
    a = Assumptions(cycles_per_day=cycles_per_day, ai=ai)
    aws, _ = totals(model(deployment, a))
    return round(aws + (ai_line(deployment, a).usd if ai else 0.0), 2)


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:])[:1] == ["--child"]:
        return _child()
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--child"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    measured = json.loads(out.strip().splitlines()[-1])
    cycles = max(1, int(measured["cycles"]))
    calls: dict[str, int] = measured["calls"]
    by_service: Counter[str] = Counter()
    for name, n in calls.items():
        by_service[name.split(":")[0]] += n
    cycles_per_day = measured["cycles"] * 24 / HOURS
    figures = {
        "symbols_1_day_s": round(measured["wall_s"], 2),
        "aws_calls_per_cycle": round(sum(calls.values()) / cycles, 1),
        "peak_memory_mb": round(measured["peak_kb"] / 1024, 1),
        "bill_per_symbol_usd": _bill(cycles_per_day, ai=False),
    }
    details = {
        "cycles": measured["cycles"],
        "invariants_ok": measured["invariants_ok"],
        "calls_by_service_per_cycle": {
            s: round(n / cycles, 1) for s, n in by_service.most_common()
        },
        "calls_per_cycle": {
            k: round(n / cycles, 1) for k, n in sorted(calls.items(), key=lambda kv: -kv[1])
        },
        "bill_with_ai_usd": _bill(cycles_per_day, ai=True),
        "not_measured": "symbols_5_day_s and symbols_20_day_s: a stack trades one symbol",
    }
    path = write_result("scale", figures, unit="mixed", details=details)
    print(table(["figure", "value"], [(k, str(v)) for k, v in figures.items()]))
    print(
        table(
            ["service", "calls per cycle"],
            [(s, str(v)) for s, v in details["calls_by_service_per_cycle"].items()],  # type: ignore[attr-defined]
        )
    )
    print(f"written: {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
