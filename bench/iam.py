"""What authorizing every AWS call against its caller's role costs the twin.

The twin checks each call a replay makes (boto3 and pynamodb, at botocore's
``_make_api_call``) against the SAM-translated template's roles. Figures, on the bundled
sample's first 12 hours, each the median of 3 runs measured in the same process:

* ``replay_without_iam_s``: the baseline, the replay with the check off;
* ``replay_with_iam_s``: the same replay with every call authorized (the default);
* ``check_us``: one authorization of a ``GetItem`` (microseconds, median of 20,000).

Counts, which do not drift with the machine's load, are in ``details``: the calls
checked, the calls denied, and the (action, resource) pairs each principal used.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, table, write_result

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

HOURS = 12
RUNS = 3


def _replay(data: object, iam: bool) -> tuple[float, dict[str, Any]]:
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    started = time.perf_counter()
    report = run_replay(
        ReplayConfig(template=TEMPLATE, data=data, symbol="TRUMPUSDC", progress=False, iam=iam),  # type: ignore[arg-type]
        out=io.StringIO(),
    )
    return time.perf_counter() - started, report


def _check_us() -> float:
    from flipbot_dev.twin.iam import Authorizer, Principal, Statement, Where

    table = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    role = Principal(
        "Fn",
        "FnRole",
        tuple(
            Statement(
                "Allow", ("dynamodb:GetItem", "dynamodb:PutItem"), resources=(f"{table}T{i}",)
            )
            for i in range(8)
        ),
    )
    authorizer = Authorizer({"Fn": role}, Where("us-east-1", "123456789012"))
    params = {"TableName": "T7", "Key": {}}
    times = []
    with authorizer.acting_as("Fn"):
        for _ in range(20_000):
            started = time.perf_counter()
            authorizer.check("dynamodb", "GetItem", params)
            times.append(time.perf_counter() - started)
    return median(times) * 1e6


def main() -> int:
    from flipbot_dev.replay.sample import generate_sample

    data = generate_sample(seed=7, hours=HOURS)
    without, with_iam = [], []
    report: dict[str, Any] = {}
    for _ in range(RUNS):  # interleaved, so that a slow moment hits both alike
        without.append(_replay(data, iam=False)[0])
        seconds, report = _replay(data, iam=True)
        with_iam.append(seconds)
    figures = {
        "replay_without_iam_s": round(median(without), 3),
        "replay_with_iam_s": round(median(with_iam), 3),
        "check_us": round(_check_us(), 2),
    }
    iam = report["iam"]
    path = write_result(
        "iam",
        figures,
        unit="seconds (check_us: microseconds)",
        baseline="replay_without_iam_s",
        details={
            "hours": HOURS,
            "calls_checked": iam["calls"],
            "calls_denied": len(iam["denied"]),
            "pairs_used": {name: len(p["used"]) for name, p in iam["principals"].items()},
            "cycles": report["cycles_completed"],
        },
    )
    print(table(["figure", "value"], [(k, f"{v:g}") for k, v in figures.items()]))
    print(f"calls checked {iam['calls']:,}, denied {len(iam['denied'])}")
    print(f"written: {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
