"""Offline decision makers: deterministic replacements for the AI consult.

Both classes implement :class:`flipbot.ports.DecisionMaker` and answer with the same
:class:`~flipbot.domain.decision.Decision` schema as the AI. They are pure: the answer
depends only on the :class:`~flipbot.domain.decision.DecisionRequest` (no clock, no I/O,
no environment), so a replay gives the same decisions every time.

Prices are proposals: they are rounded to the precision the book (or the entry price) is
written in, and the use cases still apply the exchange filters (tick size, lot size,
notional) and the guards (price band, profit floor) afterwards.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from flipbot.domain.decision import Decision, DecisionRequest, PriceRange
from flipbot.domain.model import MarketSnapshot, Side

__all__ = ["FixedMarginStrategy", "OfflineStrategy"]

_MAX_DECIMALS = 8
WAIT_RECHECK_SECONDS = 60


def unit_of(*prices: Decimal | None) -> Decimal:
    """The finest precision any of ``prices`` is written in (at most 8 decimals)."""
    decimals = 0
    for price in prices:
        if price is not None:
            exponent = price.as_tuple().exponent
            if isinstance(exponent, int):
                decimals = max(decimals, -exponent)
    return Decimal(1).scaleb(-min(decimals, _MAX_DECIMALS))


def round_down(value: Decimal, unit: Decimal) -> Decimal:
    return value.quantize(unit, rounding=ROUND_FLOOR)


def round_up(value: Decimal, unit: Decimal) -> Decimal:
    return value.quantize(unit, rounding=ROUND_CEILING)


def wait(snapshot: MarketSnapshot, reason: str, confidence: float = 0.0) -> Decision:
    return Decision(
        action="WAIT",
        base_price=snapshot.last_price,
        confidence=confidence,
        reasoning=reason,
        timeout_seconds=WAIT_RECHECK_SECONDS,
    )


def aim_from_target(request: DecisionRequest, price: Decimal, unit: Decimal) -> tuple[Decimal, str]:
    """Where a sell of ``request.sell_attempt`` rests when the strategy alone would ask
    ``price``: at the target price first, then in ``reprice_steps`` equal steps down to
    ``price``, and ``price`` from then on. Without re-pricing (or a target price at or
    under ``price``) it is ``price``. Returns the price and a note for the reasoning."""
    target, steps = request.target_price, request.reprice_steps
    if steps <= 0 or target is None or target <= price:
        return price, ""
    step = min(request.sell_attempt - 1, steps)
    aimed = round_up(target - (target - price) * step / steps, unit)
    return aimed, f"step {step}/{steps} from the target {target} down to {price}"


def sell_floor(request: DecisionRequest, entry: Decimal) -> Decimal:
    """The request's floor, or entry × (1 + fees + min_profit) when none is given."""
    if request.floor_price is not None:
        return request.floor_price
    return entry * (1 + request.fee_rate_round_trip + request.min_profit)


class OfflineStrategy:
    """Rule-based decisions from the features of a :class:`MarketSnapshot`.

    **BUY leg**

    1. *Missing data* — without a book, MA7, MA20 or volatility the answer is ``WAIT``
       with confidence 0 and the reason (MA20 needs 20 minutes of data).
    2. *Confidence* starts at ``0.80`` (a neutral market is acceptable) and adds:

       * price vs MA20, as ``z = (last / MA20 - 1) / band`` with
         ``band = max(volatility × √20, 0.1 %)`` (the typical 20-minute move):
         ``z < -2`` (a sharp drop, a falling knife) ``-0.15``; ``-2 ≤ z < -0.5`` (a dip)
         ``+0.04``; ``-0.5 ≤ z ≤ 1`` ``0``; ``1 < z ≤ 2`` ``-0.04``; ``z > 2``
         (stretched) ``-0.08``;
       * MA7 trend: DOWN ``-0.10``; UP ``+0.05`` unless ``z > 1`` (no bonus for chasing a
         rally); FLAT ``0``;
       * price vs VWAP (when known): at or below ``+0.03``; up to ``band`` above ``0``;
         further above ``-0.04``;
       * order-book imbalance (when known): ``+0.05 × imbalance`` (bids heavier = support);
       * taker buy/sell ratio (when known): ``≥ 1.2`` ``+0.03``; ``0.8..1.2`` ``0``;
         ``0.5..0.8`` ``-0.05``; ``< 0.5`` ``-0.10``;
       * position in the 24 h range (when known and wider than twice
         ``fees + min_profit``): top 20 % ``-0.05``; bottom 30 % ``+0.02``; otherwise ``0``;
       * volatility regime, with ``hourly = volatility × √60``: *wild* (1-minute
         volatility above 1 %) ``-0.20``; *quiet* (``hourly < (fees + min_profit) / 3``:
         the sell would take hours) ``-0.10``; *normal* ``+0.02``.

       The sum is clamped to ``[0, 0.99]``. A neutral market (flat trend, price near MA20
       and VWAP, balanced book and flow, normal volatility) scores ``0.82``; a
       down-trend, a sharp drop or a price stretched above its averages scores below
       ``0.8``, so the bot waits; a dip in a flat or rising market scores ``0.85`` or more.
    3. *Price* — ``bid × (1 - discount)`` rounded down, with
       ``discount = base_discount + volatility_discount × volatility`` capped at
       ``max_discount`` (deeper under the bid when the market is volatile).
       ``price_range`` spans twice the discount below the bid up to the bid.
    4. *Timeout* — ``base_timeout_seconds × reference_volatility / volatility``, clamped
       to ``[min_timeout_seconds, max_timeout_seconds]``: volatile markets re-price sooner.
    5. *Action* — ``BUY`` when the confidence reaches ``request.min_confidence``,
       ``WAIT`` otherwise (a ``WAIT`` suggests asking again after 60 s).

    **SELL leg** (mandatory once holding, so confidence ``0.95``)

    * ``margin = min_profit + margin_volatility_factor × volatility × √60`` (rounded up to
      0.01 %), clamped to ``[min_profit, target_profit]`` (``min_profit`` when the
      volatility is unknown): with the default factor 0.1 and a 1-minute volatility of
      0.4 %, a margin of 1.31 % over entry and fees;
    * ``base_price = max(floor_price, entry × (1 + fees + margin))`` rounded up, so it is
      never below the floor (``entry × (1 + fees + min_profit)`` when the request gives
      none); ``price_range`` runs from the floor to ``entry × (1 + fees + target_profit)``;
    * with re-pricing (``request.reprice_steps`` > 0) the first sell rests at
      ``request.target_price`` instead, and each re-priced one a step lower, down to that
      price (:func:`aim_from_target`);
    * without an entry price the answer is ``WAIT`` with confidence 0.
    """

    name: str = "offline"

    def __init__(
        self,
        *,
        base_discount: Decimal = Decimal("0.0005"),
        volatility_discount: Decimal = Decimal("0.5"),
        max_discount: Decimal = Decimal("0.01"),
        margin_volatility_factor: Decimal = Decimal("0.1"),
        base_timeout_seconds: int = 900,
        reference_volatility: float = 0.002,
        min_timeout_seconds: int = 300,
        max_timeout_seconds: int = 3600,
        sell_confidence: float = 0.95,
    ) -> None:
        self.base_discount = base_discount
        self.volatility_discount = volatility_discount
        self.max_discount = max_discount
        self.margin_volatility_factor = margin_volatility_factor
        self.base_timeout_seconds = base_timeout_seconds
        self.reference_volatility = reference_volatility
        self.min_timeout_seconds = min_timeout_seconds
        self.max_timeout_seconds = max_timeout_seconds
        self.sell_confidence = sell_confidence

    def decide(self, request: DecisionRequest) -> Decision:
        if request.leg is Side.BUY:
            return self._buy(request)
        return self._sell(request)

    # ------------------------------------------------------------------ helpers

    def _timeout(self, volatility: float | None) -> int:
        if volatility is None or volatility <= 0:
            return self.base_timeout_seconds
        scaled = self.base_timeout_seconds * self.reference_volatility / volatility
        return int(min(self.max_timeout_seconds, max(self.min_timeout_seconds, round(scaled))))

    def confidence(self, request: DecisionRequest) -> tuple[float, list[str]]:
        """The BUY confidence and one line per feature; see the class docstring."""
        snap = request.snapshot
        if snap.ma20 is None or snap.ma20 <= 0 or snap.volatility is None:
            raise ValueError("confidence needs a positive MA20 and the volatility")
        last = float(snap.last_price)
        volatility = float(snap.volatility)
        band = max(volatility * math.sqrt(20), 0.001)
        score = 0.80
        notes: list[str] = []

        z = (last / float(snap.ma20) - 1) / band
        if z < -2:
            ma20_score, label = -0.15, "sharp drop below"
        elif z < -0.5:
            ma20_score, label = 0.04, "dip below"
        elif z <= 1:
            ma20_score, label = 0.0, "near"
        elif z <= 2:
            ma20_score, label = -0.04, "above"
        else:
            ma20_score, label = -0.08, "stretched above"
        score += ma20_score
        notes.append(f"price {label} MA20 {snap.ma20} (z={z:+.2f}, {ma20_score:+.2f})")

        trend_name = snap.ma7_trend.upper()
        if trend_name == "DOWN":
            trend = -0.10
        elif trend_name == "UP":
            trend = 0.05 if z <= 1 else 0.0  # no bonus for chasing a price above MA20
        else:
            trend = 0.0
        score += trend
        notes.append(f"MA7 trend {trend_name} ({trend:+.2f})")

        if snap.vwap is not None and snap.vwap > 0:
            ratio = last / float(snap.vwap) - 1
            if ratio <= 0:
                vwap_score, label = 0.03, "at or below"
            elif ratio <= band:
                vwap_score, label = 0.0, "near"
            else:
                vwap_score, label = -0.04, "above"
            score += vwap_score
            notes.append(f"price {label} VWAP {snap.vwap} ({ratio:+.2%}, {vwap_score:+.2f})")
        else:
            notes.append("VWAP unknown (+0.00)")

        if snap.imbalance is not None:
            imbalance = max(-1.0, min(1.0, float(snap.imbalance)))
            score += 0.05 * imbalance
            notes.append(f"book imbalance {imbalance:+.2f} ({0.05 * imbalance:+.3f})")
        else:
            notes.append("book imbalance unknown (+0.00)")

        if snap.buy_sell_ratio is not None:
            flow = float(snap.buy_sell_ratio)
            if flow >= 1.2:
                flow_score = 0.03
            elif flow >= 0.8:
                flow_score = 0.0
            elif flow >= 0.5:
                flow_score = -0.05
            else:
                flow_score = -0.10
            score += flow_score
            notes.append(f"taker buy/sell ratio {flow:.2f} ({flow_score:+.2f})")
        else:
            notes.append("taker buy/sell ratio unknown (+0.00)")

        if snap.high_24h is not None and snap.low_24h is not None:
            high, low = float(snap.high_24h), float(snap.low_24h)
            needed_range = 2 * float(request.fee_rate_round_trip + request.min_profit)
            if low > 0 and high / low - 1 >= needed_range:
                position = (last - low) / (high - low)
                if position > 0.8:
                    range_score, label = -0.05, "near the top of"
                elif position < 0.3:
                    range_score, label = 0.02, "in the lower part of"
                else:
                    range_score, label = 0.0, "inside"
                score += range_score
                notes.append(
                    f"price {label} the 24h range {snap.low_24h}..{snap.high_24h} "
                    f"({position:.0%}, {range_score:+.2f})"
                )
            else:
                notes.append("24h range too narrow to matter (+0.00)")
        else:
            notes.append("24h range unknown (+0.00)")

        hourly = volatility * math.sqrt(60)
        needed = float(request.fee_rate_round_trip + request.min_profit)
        if volatility > 0.01:
            regime, regime_score = "wild", -0.20
        elif hourly < needed / 3:
            regime, regime_score = "quiet", -0.10
        else:
            regime, regime_score = "normal", 0.02
        score += regime_score
        notes.append(
            f"volatility {volatility:.3%}/min, {hourly:.2%}/h: {regime} ({regime_score:+.2f})"
        )
        return round(max(0.0, min(0.99, score)), 3), notes

    # ------------------------------------------------------------------ legs

    def _buy(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        missing = [
            name
            for name, value in (
                ("order book", snap.book),
                ("MA7", snap.ma7),
                ("MA20", snap.ma20 if snap.ma20 is not None and snap.ma20 > 0 else None),
                ("volatility", snap.volatility),
            )
            if value is None
        ]
        if missing or snap.book is None or snap.volatility is None:
            return wait(
                snap,
                f"WAIT: not enough market data ({', '.join(missing)} missing; "
                "the moving averages need 20 minutes of trades)",
            )
        confidence, notes = self.confidence(request)
        volatility = Decimal(snap.volatility)
        discount = min(
            self.max_discount, self.base_discount + self.volatility_discount * volatility
        )
        bid = snap.book.bid
        unit = unit_of(bid, snap.book.ask)
        price = round_down(bid * (1 - discount), unit)
        low = round_down(bid * (1 - min(self.max_discount, 2 * discount)), unit)
        timeout = self._timeout(float(volatility))
        act = confidence >= request.min_confidence
        reasoning = "; ".join(
            [
                *notes,
                f"confidence {confidence:.3f} vs minimum {request.min_confidence:.2f}",
                f"{'BUY' if act else 'WAIT'} at {price}: {float(discount):.3%} under the bid {bid}",
                f"timeout {timeout} s",
            ]
        )
        return Decision(
            action="BUY" if act else "WAIT",
            base_price=price,
            price_range=PriceRange(low=min(low, price), high=bid),
            confidence=confidence,
            reasoning=reasoning,
            timeout_seconds=timeout if act else WAIT_RECHECK_SECONDS,
        )

    def _sell(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        entry = request.entry_price
        if entry is None:
            return wait(snap, "WAIT: no entry price for the SELL leg")
        fees = request.fee_rate_round_trip
        if snap.volatility is None:
            margin = request.min_profit
            margin_note = f"volatility unknown: margin = min_profit {margin}"
        else:
            hourly = Decimal(snap.volatility) * Decimal(60).sqrt()
            raw = request.min_profit + self.margin_volatility_factor * hourly
            raw = raw.quantize(Decimal("0.0001"), rounding=ROUND_CEILING)
            margin = min(request.target_profit, max(request.min_profit, raw))
            margin_note = f"margin {margin:.4f} from volatility {float(hourly):.2%}/h"
        floor = sell_floor(request, entry)
        unit = unit_of(snap.book.bid if snap.book else None, entry)
        target = entry * (1 + fees + margin)
        price, step_note = aim_from_target(request, round_up(max(floor, target), unit), unit)
        high = max(price, round_up(entry * (1 + fees + request.target_profit), unit))
        timeout = self._timeout(None if snap.volatility is None else float(snap.volatility))
        reasoning = (
            f"SELL at {price}: entry {entry} × (1 + fees {fees} + {margin_note}); "
            f"{step_note + '; ' if step_note else ''}"
            f"floor {floor}; confidence {self.sell_confidence:.2f} (the sell is mandatory)"
        )
        return Decision(
            action="SELL",
            base_price=price,
            price_range=PriceRange(low=min(floor, price), high=high),
            confidence=self.sell_confidence,
            reasoning=reasoning,
            timeout_seconds=timeout,
            suggested_margin=margin,
        )


class FixedMarginStrategy:
    """The simplest baseline: buy at the best bid, sell at a fixed margin.

    * BUY: ``base_price = bid`` with confidence 1.0 (``WAIT`` with confidence 0 when there
      is no book), resting ``timeout_seconds``.
    * SELL: ``base_price = max(floor_price, entry × (1 + fees + min_profit))`` rounded up,
      confidence 1.0 (``WAIT`` with confidence 0 without an entry price); with re-pricing,
      the target price first and down to that in steps (:func:`aim_from_target`).
    """

    name: str = "fixed"

    def __init__(self, *, timeout_seconds: int = 900) -> None:
        self.timeout_seconds = timeout_seconds

    def decide(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        if request.leg is Side.BUY:
            if snap.book is None:
                return wait(snap, "WAIT: no order book yet")
            bid = snap.book.bid
            return Decision(
                action="BUY",
                base_price=bid,
                price_range=PriceRange(low=bid, high=bid),
                confidence=1.0,
                reasoning=f"BUY at the best bid {bid}",
                timeout_seconds=self.timeout_seconds,
            )
        entry = request.entry_price
        if entry is None:
            return wait(snap, "WAIT: no entry price for the SELL leg")
        floor = sell_floor(request, entry)
        target = entry * (1 + request.fee_rate_round_trip + request.min_profit)
        unit = unit_of(snap.book.bid if snap.book else None, entry)
        price, step_note = aim_from_target(request, round_up(max(floor, target), unit), unit)
        return Decision(
            action="SELL",
            base_price=price,
            price_range=PriceRange(low=min(floor, price), high=price),
            confidence=1.0,
            reasoning=(
                f"SELL at {price}: entry {entry} × (1 + fees {request.fee_rate_round_trip} "
                f"+ min_profit {request.min_profit}); "
                f"{step_note + '; ' if step_note else ''}floor {floor}"
            ),
            timeout_seconds=self.timeout_seconds,
            suggested_margin=request.min_profit,
        )
