"""Cycle states and transitions: every allowed move, every refused one."""

from __future__ import annotations

import itertools

import pytest

from flipbot.domain.cycle import (
    CycleEvent,
    CycleState,
    allowed_events,
    is_final,
    transition,
)
from flipbot.domain.errors import InvalidTransition

S, E = CycleState, CycleEvent

# The specification, written out independently of the module's table.
EXPECTED = [
    (S.READY_TO_BUY, E.BUY_PLACED, S.BUYING),
    (S.BUYING, E.BUY_FILLED, S.READY_TO_SELL),
    (S.BUYING, E.BUY_CANCELED_UNFILLED, S.READY_TO_BUY),
    (S.BUYING, E.BUY_CANCELED_PARTIAL, S.READY_TO_SELL),
    (S.BUYING, E.BUY_REJECTED, S.READY_TO_BUY),
    (S.READY_TO_SELL, E.SELL_PLACED, S.SELLING),
    (S.SELLING, E.SELL_FILLED, S.COMPLETED),
    (S.SELLING, E.SELL_CANCELED, S.READY_TO_SELL),
    (S.SELLING, E.SELL_REJECTED, S.READY_TO_SELL),
    (S.READY_TO_BUY, E.HALTED, S.STOPPED),
    (S.BUYING, E.HALTED, S.STOPPED),
    (S.READY_TO_SELL, E.HALTED, S.STOPPED),
    (S.SELLING, E.HALTED, S.STOPPED),
]
ALLOWED = {(state, event) for state, event, _ in EXPECTED}
REFUSED = [pair for pair in itertools.product(S, E) if pair not in ALLOWED]


@pytest.mark.parametrize(("state", "event", "after"), EXPECTED)
def test_given_an_allowed_event_when_applied_then_the_cycle_moves_to_the_next_state(
    state: CycleState, event: CycleEvent, after: CycleState
) -> None:
    assert transition(state, event) is after


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_given_a_refused_event_when_applied_then_invalid_transition_names_everything(
    state: CycleState, event: CycleEvent
) -> None:
    with pytest.raises(InvalidTransition) as info:
        transition(state, event)
    message = str(info.value)
    assert str(event) in message
    assert f"state {state}" in message
    for allowed in allowed_events(state):
        assert str(allowed) in message


def test_every_state_event_pair_is_either_allowed_or_refused() -> None:
    assert len(EXPECTED) + len(REFUSED) == len(S) * len(E)
    assert len(REFUSED) == 6 * 10 - 13


@pytest.mark.parametrize("state", list(S))
def test_given_a_state_then_allowed_events_are_exactly_the_specified_ones(
    state: CycleState,
) -> None:
    assert set(allowed_events(state)) == {e for s, e, _ in EXPECTED if s is state}


@pytest.mark.parametrize("state", [S.COMPLETED, S.STOPPED])
def test_given_a_final_state_then_nothing_is_allowed_and_the_error_says_so(
    state: CycleState,
) -> None:
    assert allowed_events(state) == ()
    assert is_final(state)
    with pytest.raises(InvalidTransition, match=r"allowed: none \(final state\)"):
        transition(state, E.BUY_PLACED)


@pytest.mark.parametrize("state", [s for s in S if s not in (S.COMPLETED, S.STOPPED)])
def test_given_a_live_state_then_it_is_not_final(state: CycleState) -> None:
    assert not is_final(state)


def test_given_stored_strings_then_they_are_accepted_as_states_and_events() -> None:
    assert transition("BUYING", "BUY_FILLED") is S.READY_TO_SELL
    with pytest.raises(ValueError, match="NOT_A_STATE"):
        transition("NOT_A_STATE", "BUY_FILLED")


def _run(*events: CycleEvent) -> CycleState:
    state = S.READY_TO_BUY
    for event in events:
        state = transition(state, event)
    return state


def test_given_a_happy_cycle_then_it_completes() -> None:
    assert _run(E.BUY_PLACED, E.BUY_FILLED, E.SELL_PLACED, E.SELL_FILLED) is S.COMPLETED


def test_given_a_timed_out_buy_then_a_new_buy_is_placed_and_the_cycle_completes() -> None:
    state = _run(E.BUY_PLACED, E.BUY_CANCELED_UNFILLED, E.BUY_PLACED, E.BUY_REJECTED)
    assert state is S.READY_TO_BUY
    assert _run(E.BUY_PLACED, E.BUY_CANCELED_PARTIAL, E.SELL_PLACED, E.SELL_FILLED) is (S.COMPLETED)


def test_given_a_sell_canceled_by_hand_then_the_held_asset_is_sold_again() -> None:
    state = _run(E.BUY_PLACED, E.BUY_FILLED, E.SELL_PLACED, E.SELL_CANCELED)
    assert state is S.READY_TO_SELL
    assert transition(transition(state, E.SELL_PLACED), E.SELL_REJECTED) is S.READY_TO_SELL


def test_given_a_cycle_halted_while_selling_then_it_is_stopped_and_stays_stopped() -> None:
    state = _run(E.BUY_PLACED, E.BUY_FILLED, E.SELL_PLACED, E.HALTED)
    assert state is S.STOPPED
    with pytest.raises(InvalidTransition):
        transition(state, E.SELL_FILLED)


def test_a_cycle_id_names_its_symbol_unless_it_is_the_stack_s_own() -> None:
    from flipbot.domain.cycle import (
        cycle_id_for,
        cycle_sequence,
        cycle_symbol_part,
        next_cycle_id,
    )

    assert cycle_id_for(7) == "c000007"
    assert cycle_id_for(7, "BTCUSDC") == "BTCUSDC_c000007"
    assert (cycle_sequence("BTCUSDC_c000007"), cycle_symbol_part("BTCUSDC_c000007")) == (
        7,
        "BTCUSDC",
    )
    assert (cycle_sequence("c000007"), cycle_symbol_part("c000007")) == (7, "")
    assert next_cycle_id("BTCUSDC_c999999") == "BTCUSDC_c1000000"
    assert next_cycle_id("c000041") == "c000042"
