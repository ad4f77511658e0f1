"""The states of one trade cycle and the events that move it.

A cycle buys (``READY_TO_BUY`` -> ``BUYING``), then sells what it holds
(``READY_TO_SELL`` -> ``SELLING``) until ``COMPLETED``. A buy that ends with nothing
filled (canceled, expired, rejected) goes back to ``READY_TO_BUY``; one canceled after a
partial fill goes on to ``READY_TO_SELL`` with what was filled. A canceled or rejected
sell returns to ``READY_TO_SELL``: the base asset is still held. ``COMPLETED`` is final;
the next cycle starts afresh. A cycle that cannot go on (its execution was stopped by
hand, or the account no longer holds its position) is ``HALTED`` from any state but a
final one into ``STOPPED``, final too: the cycle item records why, and nothing resumes it
on its own. :data:`TRANSITIONS` is the whole table.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from flipbot.domain.errors import InvalidTransition


class CycleState(StrEnum):
    READY_TO_BUY = "READY_TO_BUY"
    BUYING = "BUYING"
    READY_TO_SELL = "READY_TO_SELL"
    SELLING = "SELLING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"


class CycleEvent(StrEnum):
    BUY_PLACED = "BUY_PLACED"
    BUY_FILLED = "BUY_FILLED"
    BUY_CANCELED_UNFILLED = "BUY_CANCELED_UNFILLED"  # canceled / expired with nothing filled
    BUY_CANCELED_PARTIAL = "BUY_CANCELED_PARTIAL"  # canceled after a partial fill: sell that
    BUY_REJECTED = "BUY_REJECTED"
    SELL_PLACED = "SELL_PLACED"
    SELL_FILLED = "SELL_FILLED"
    SELL_CANCELED = "SELL_CANCELED"  # e.g. canceled by hand: the base asset is still held
    SELL_REJECTED = "SELL_REJECTED"
    HALTED = "HALTED"  # it cannot go on: stopped with a reason, an alarm raised


_S, _E = CycleState, CycleEvent

TRANSITIONS: MappingProxyType[CycleState, MappingProxyType[CycleEvent, CycleState]] = (
    MappingProxyType(
        {
            _S.READY_TO_BUY: MappingProxyType({_E.BUY_PLACED: _S.BUYING, _E.HALTED: _S.STOPPED}),
            _S.BUYING: MappingProxyType(
                {
                    _E.BUY_FILLED: _S.READY_TO_SELL,
                    _E.BUY_CANCELED_UNFILLED: _S.READY_TO_BUY,
                    _E.BUY_CANCELED_PARTIAL: _S.READY_TO_SELL,
                    _E.BUY_REJECTED: _S.READY_TO_BUY,
                    _E.HALTED: _S.STOPPED,
                }
            ),
            _S.READY_TO_SELL: MappingProxyType({_E.SELL_PLACED: _S.SELLING, _E.HALTED: _S.STOPPED}),
            _S.SELLING: MappingProxyType(
                {
                    _E.SELL_FILLED: _S.COMPLETED,
                    _E.SELL_CANCELED: _S.READY_TO_SELL,
                    _E.SELL_REJECTED: _S.READY_TO_SELL,
                    _E.HALTED: _S.STOPPED,
                }
            ),
            _S.COMPLETED: MappingProxyType({}),
            _S.STOPPED: MappingProxyType({}),
        }
    )
)
"""The whole state machine: ``TRANSITIONS[state][event]`` is the next state."""


def allowed_events(state: CycleState | str) -> tuple[CycleEvent, ...]:
    """The events ``state`` accepts, in table order (empty for a final state)."""
    return tuple(TRANSITIONS[CycleState(state)])


def transition(state: CycleState | str, event: CycleEvent | str) -> CycleState:
    """The state after ``event``; raises :class:`InvalidTransition` if ``state`` refuses it."""
    state, event = CycleState(state), CycleEvent(event)
    next_state = TRANSITIONS[state].get(event)
    if next_state is None:
        allowed = ", ".join(allowed_events(state)) or "none (final state)"
        raise InvalidTransition(f"{event} is not allowed in state {state}; allowed: {allowed}")
    return next_state


def is_final(state: CycleState | str) -> bool:
    """True for ``COMPLETED`` and ``STOPPED``: nothing can happen to the cycle any more."""
    return not TRANSITIONS[CycleState(state)]


def advance(state: CycleState, event: CycleEvent) -> CycleState:
    """Apply a cycle event; applying the same event twice leaves the state where it is."""
    try:
        return transition(state, event)
    except InvalidTransition:
        return state


HOME = ""
"""The symbol part of a cycle id of the stack's own ``Symbol``: none (``c000001``)."""

#: a cycle id: ``c000001`` (the stack's ``Symbol``) or ``<SYMBOL>_c000001`` (any other)
CYCLE_ID_PATTERN = r"^(?:[A-Z0-9]{5,20}_)?c\d{6,}$"


def cycle_id_for(sequence: int, symbol: str = HOME) -> str:
    """The id of a chain's ``sequence``-th cycle: ``c000001``, ``c000002``... for the
    stack's ``Symbol``, ``BTCUSDC_c000001``... for another symbol's chain."""
    return f"{symbol}_c{sequence:06d}" if symbol else f"c{sequence:06d}"


def cycle_sequence(cycle_id: str) -> int:
    """Where ``cycle_id`` stands in its chain: 1 for ``c000001`` or ``BTCUSDC_c000001``."""
    return int(cycle_id.rpartition("_")[2].lstrip("c"))


def cycle_symbol_part(cycle_id: str) -> str:
    """The symbol a cycle id names (``BTCUSDC`` for ``BTCUSDC_c000007``), ``HOME`` for a
    cycle of the stack's ``Symbol`` (``c000007``)."""
    return cycle_id.rpartition("_")[0]


def next_cycle_id(cycle_id: str) -> str:
    """The cycle after ``cycle_id`` in the same symbol's chain."""
    return cycle_id_for(cycle_sequence(cycle_id) + 1, cycle_symbol_part(cycle_id))
