"""The no_silent_halt invariant: every cycle runs, completed, or stopped with a reason that
the CycleHalted metric counted."""

from __future__ import annotations

from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import Cycle
from flipbot_dev.twin.runner import silent_halts


def _cycle(cycle_id: str, state: CycleState, reason: str = "") -> Cycle:
    return Cycle(cycle_id, "TRUMPUSDC", state, created_ms=0, updated_ms=0, stop_reason=reason)


def test_given_completed_running_and_stopped_with_reason_and_metric_then_no_silent_halt() -> None:
    cycles = [
        _cycle("c000001", CycleState.COMPLETED),
        _cycle("c000002", CycleState.STOPPED, "execution stopped by hand (c000002)"),
        _cycle("c000003", CycleState.SELLING),
    ]
    assert silent_halts(cycles, {"c000003"}, halted_counted=1) == []


def test_given_an_open_cycle_with_no_execution_then_it_halted_silently() -> None:
    cycles = [_cycle("c000003", CycleState.SELLING)]
    assert silent_halts(cycles, set(), halted_counted=0) == [
        "c000003: SELLING, no running execution, no reason"
    ]


def test_given_a_stop_without_reason_or_without_the_metric_then_it_is_silent() -> None:
    cycles = [
        _cycle("c000002", CycleState.STOPPED),
        _cycle("c000003", CycleState.STOPPED, "position gone from the account"),
    ]
    assert silent_halts(cycles, set(), halted_counted=0) == [
        "c000002: STOPPED with no reason",
        "1 cycle(s) stopped, CycleHalted counted 0",
    ]
