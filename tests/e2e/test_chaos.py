"""Chaos replays: at-least-once delivery, crashes and exchange faults never break the money.

CI runs a bounded sample (two seeds of every scenario, and one of every scenario with a
tight stop-loss); ``make chaos`` runs 200 seeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flipbot_dev.twin.chaos import SCENARIOS, Chaos
from flipbot_dev.twin.chaos_run import plan, run_many, table
from flipbot_dev.twin.world import WORLD_SCENARIOS

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

INJECTED = {
    "duplicate": "duplicated",
    "reorder": "reordered",
    "drop": "gaps",
    "crash": "crashes",
    "exchange": "faults",
    "restart": "gaps",
    "concurrent": "overlapped",
}


@pytest.fixture(scope="module")
def chaos_rows() -> list[dict[str, object]]:
    runs = run_many("all", 2 * len(SCENARIOS), template=TEMPLATE, hours=4, workers=2)
    return table(runs)


def test_given_every_scenario_when_replayed_then_no_invariant_breaks(
    chaos_rows: list[dict[str, object]],
) -> None:
    assert [row["scenario"] for row in chaos_rows] == list(SCENARIOS)
    broken = {row["scenario"]: row["violations"] for row in chaos_rows if row["violations"]}
    assert not broken


def test_given_every_scenario_then_its_fault_was_really_injected(
    chaos_rows: list[dict[str, object]],
) -> None:
    by_name = {row["scenario"]: row for row in chaos_rows}
    for scenario, column in INJECTED.items():
        assert by_name[scenario][column], f"{scenario} injected no {column}"
    assert by_name["combined"]["crashes"] or by_name["combined"]["faults"]


def test_given_every_world_scenario_then_it_acted_on_the_bot(
    chaos_rows: list[dict[str, object]],
) -> None:
    by_name = {row["scenario"]: row for row in chaos_rows}
    for scenario in WORLD_SCENARIOS:
        assert by_name[scenario]["injected"], f"{scenario} injected nothing"
        assert by_name[scenario]["injections"], f"{scenario} names no injection"


def test_given_the_world_profile_then_its_seeds_go_round_its_scenarios() -> None:
    assert plan("world", 8) == [
        ("exchange-ended", 1),
        ("manual", 2),
        ("forged", 3),
        ("stopped", 4),
        ("poison", 5),
        ("ai-hostile", 6),
        ("exchange-ended", 7),
        ("manual", 8),
    ]
    assert set(WORLD_SCENARIOS) <= {scenario for scenario, _ in plan("all", len(SCENARIOS))}


def test_given_a_tight_stop_loss_under_every_scenario_then_its_exits_keep_the_invariants() -> None:
    # A 0.3 % stop fires often on the sample market: CheckSell, CancelSell and the exits
    # below the floor run under duplicates, reorders, gaps, crashes and exchange faults.
    runs = run_many(
        "all",
        len(SCENARIOS),
        template=TEMPLATE,
        hours=3,
        workers=2,
        parameters={"StopLoss": "0.003"},
    )
    rows = table(runs)
    broken = {row["scenario"]: row["violations"] for row in rows if row["violations"]}
    assert not broken
    assert sum(row["stop_loss_exits"] for row in rows) > 0
    assert sum(row["dead_letters"] for row in rows) == 0


def test_given_a_seed_then_the_chaos_is_reproducible() -> None:
    first, second = Chaos("combined", 5), Chaos("combined", 5)
    batch = [{"e": "executionReport", "i": n} for n in range(50)]
    assert first.deliveries(batch) == second.deliveries(batch)
    assert first.stats == second.stats


def test_given_an_unknown_profile_then_the_error_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown chaos profile 'typo'.*duplicate"):
        Chaos("typo", 1)
