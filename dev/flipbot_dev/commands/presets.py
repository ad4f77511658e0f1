"""Named set-ups of a replay: a strategy with its capital and template parameters.

``flipbot replay --preset NAME`` and ``flipbot compare --strategy ... NAME`` run one; a
flag or ``--param`` given on the command line wins over the preset's value.

``ma-cross-poc`` is the MA-crossover proof of concept: 500 quote of capital, 150 a
position, the session ends at +6 realized, at -15 (realized plus the open position) or
after 4 hours; MA(9) over MA(21) on 5-minute candles (the ``ma-cross`` strategy's own
periods). That proof of concept ran on a futures testnet and could go short; this bot
trades spot, long only: it buys on a golden cross and sells, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType


@dataclass(frozen=True)
class Preset:
    """A strategy, the quote balance it starts with, and the template parameters it sets."""

    name: str
    strategy: str
    balance: Decimal
    parameters: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "ma-cross-poc": Preset(
            name="ma-cross-poc",
            strategy="ma-cross",
            balance=Decimal(500),
            parameters=MappingProxyType(
                {
                    "QuotePerCycle": "150",
                    "SessionProfitTarget": "6",
                    "SessionMaxLoss": "15",
                    "SessionTimeLimitHours": "4",
                }
            ),
            summary="MA(9/21) on 5 m candles, 500 capital, 150 a position, "
            "session +6 / -15 / 4 h (spot, long only)",
        )
    }
)


def preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` naming it and the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}"
        ) from None


@dataclass(frozen=True)
class Setup:
    """What one replay runs: the decision maker, the quote balance, the parameters."""

    strategy: str
    balance: Decimal
    parameters: dict[str, str]


def setup(
    chosen: Preset | None,
    *,
    strategy: str | None = None,
    balance: Decimal | None = None,
    quote_per_cycle: str | None = None,
    params: Sequence[str] = (),
) -> Setup:
    """The preset's values (``None``: the defaults: offline, 100, ``QuotePerCycle=10``)
    under the command line's: ``strategy``, ``balance``, ``quote_per_cycle`` when given,
    then each ``--param KEY=VALUE`` (``ValueError`` names a malformed one)."""
    parameters = {"QuotePerCycle": "10", **(chosen.parameters if chosen else {})}
    if quote_per_cycle is not None:
        parameters["QuotePerCycle"] = quote_per_cycle
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        parameters[key] = value
    return Setup(
        strategy=strategy or (chosen.strategy if chosen else "offline"),
        balance=balance if balance is not None else (chosen.balance if chosen else Decimal(100)),
        parameters=parameters,
    )
