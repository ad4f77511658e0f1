"""A normal day stays well under every AWS limit the twin enforces."""

from __future__ import annotations

import io
from pathlib import Path

from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.limits import LIMITS
from flipbot_dev.twin.runner import ReplayConfig, run_replay

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

#: "well under": at most this share of a limit
HEADROOM = 0.5


def test_given_a_normal_day_then_every_limit_has_its_highest_value_well_under_it() -> None:
    report = run_replay(
        ReplayConfig(
            template=TEMPLATE,
            data=generate_sample(seed=7, hours=6),
            symbol="TRUMPUSDC",
            progress=False,
        ),
        out=io.StringIO(),
    )
    limits = report["limits"]
    assert set(LIMITS) <= set(limits)
    for name in LIMITS:
        seen = limits[name]
        assert 0 < seen["highest"] <= HEADROOM * seen["limit"], (name, seen)
    timeouts = limits["lambda_timeout"]
    assert set(timeouts) == set(report["invocations"])
    for function, seen in timeouts.items():
        assert seen["limit_seconds"] >= 30, function
        assert seen["virtual_seconds_max"] == 0, function  # the clock stands still meanwhile
    assert all(report["invariants"].values())
