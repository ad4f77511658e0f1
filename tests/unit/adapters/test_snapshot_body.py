"""A stored market snapshot reads back whole, and a field this code does not know (a newer
listener's, during a deploy) does not stop the read."""

from __future__ import annotations

from decimal import Decimal

from flipbot.adapters.dynamodb import snapshot_from_json, snapshot_to_json
from flipbot.domain.model import BookTop, MarketSnapshot


def _snapshot() -> MarketSnapshot:
    return MarketSnapshot(
        symbol="TRUMPUSDC",
        time_ms=1_737_331_200_000,
        last_price=Decimal("25.95"),
        book=BookTop(Decimal("25.95"), Decimal("50"), Decimal("25.96"), Decimal("40")),
        vwap=Decimal("25.9"),
        btc_correlation=Decimal("0.8123"),
        extra={"depth_levels": "10"},
    )


def test_a_snapshot_reads_back_as_written() -> None:
    assert snapshot_from_json(snapshot_to_json(_snapshot())) == _snapshot()


def test_a_field_from_a_newer_writer_is_left_out() -> None:
    body = {**snapshot_to_json(_snapshot()), "eth_correlation": "0.5"}
    assert snapshot_from_json(body) == _snapshot()
