"""The report's stop-loss invariant: a sell below the floor needs its evidence."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import pytest

from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import ConsultationRecord, Cycle, OrderRecord
from flipbot.domain.model import Side
from flipbot.domain.stop_loss import STOP_LOSS_VERDICT
from flipbot_dev.twin.report import unjustified_stop_exits

D = Decimal
CYCLE = Cycle("c000001", "TRUMPUSDC", CycleState.SELLING, 0, 0, entry_price=D("25.90"))
ORDER = OrderRecord(
    "fb-c000001-S2",
    "TRUMPUSDC",
    Side.SELL,
    D("25.52"),
    D("0.384"),
    cycle_id="c000001",
    consultation_id="c000001-S2-1",
    exit_reason="STOP_LOSS",
)
AUDIT = ConsultationRecord(
    consultation_id="c000001-S2-1",
    cycle_id="c000001",
    leg=Side.SELL,
    time_ms=1,
    decided_by="stop-loss",
    prompt_version="offline-v1",
    context_hash="",
    action="SELL",
    price=D("25.52"),
    confidence=1.0,
    reasoning="",
    verdict=STOP_LOSS_VERDICT,
    extra={"last_price": "25.51", "stop_price": "25.641"},
)
STOP = SimpleNamespace(stop_loss=D("0.01"))


def test_given_a_stop_exit_with_its_evidence_then_it_is_justified() -> None:
    assert unjustified_stop_exits([ORDER], [CYCLE], [AUDIT], STOP) == []


@pytest.mark.parametrize(
    ("audit", "settings"),
    [
        (AUDIT, SimpleNamespace(stop_loss=None)),  # no stop-loss configured
        (replace(AUDIT, verdict="PLACE"), STOP),  # not decided by the stop-loss rule
        (replace(AUDIT, cycle_id="c000002"), STOP),  # another cycle's consultation
        (replace(AUDIT, extra={"last_price": "25.70", "stop_price": "25.641"}), STOP),
        (replace(AUDIT, extra={"last_price": "25.51", "stop_price": "25.80"}), STOP),
        (replace(AUDIT, extra={}), STOP),  # no evidence recorded
        (replace(AUDIT, consultation_id="other"), STOP),  # no consultation at all
    ],
    ids=[
        "not-configured",
        "wrong-verdict",
        "other-cycle",
        "last-above-stop",
        "stop-not-entry-based",
        "no-evidence",
        "no-consultation",
    ],
)
def test_given_a_stop_exit_without_valid_evidence_then_the_report_names_it(
    audit: ConsultationRecord, settings: SimpleNamespace
) -> None:
    assert unjustified_stop_exits([ORDER], [CYCLE], [audit], settings) == ["fb-c000001-S2"]
