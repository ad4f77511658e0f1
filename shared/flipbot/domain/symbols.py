"""What a list of symbols is (``SYMBOLS``): the rule the functions' settings and the
listener's share."""

from __future__ import annotations

import re

SYMBOL_PATTERN = r"^[A-Z0-9]{5,20}$"
"""A Binance spot symbol as the settings take it: ``TRUMPUSDC``."""


def parse_symbols(raw: str) -> tuple[str, ...]:
    """``SYMBOLS``: comma-separated, e.g. ``TRUMPUSDC,BTCUSDC``; empty: none (``SYMBOL``
    alone, as the settings then say)."""
    return tuple(part.strip().upper() for part in raw.split(",") if part.strip())


def symbols_problem(symbols: tuple[str, ...]) -> str:
    """What is wrong with ``symbols``, naming it; ``""`` when nothing is."""
    for symbol in symbols:
        if not re.fullmatch(SYMBOL_PATTERN, symbol):
            return f"SYMBOLS has {symbol!r}: a symbol is 5 to 20 capital letters or digits"
    if len(set(symbols)) != len(symbols):
        return f"SYMBOLS={','.join(symbols)!r} names a symbol twice"
    return ""
