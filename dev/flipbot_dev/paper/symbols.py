"""Realistic ``exchangeInfo`` symbol entries for the paper exchange.

The entries follow the shape of a current ``GET /api/v3/exchangeInfo`` symbol (filters
``PRICE_FILTER``, ``LOT_SIZE``, ``ICEBERG_PARTS``, ``MARKET_LOT_SIZE``, ``TRAILING_DELTA``,
``PERCENT_PRICE_BY_SIDE``, ``NOTIONAL``, ``MAX_NUM_ORDERS``, ``MAX_NUM_ALGO_ORDERS``), with
decimals written as Binance writes them (``"0.01000000"``). The numbers are assumptions
for offline runs: a live deployment always reads the filters from Binance.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# Quote assets tried, longest first, when splitting a symbol into base and quote.
_QUOTE_ASSETS = ("FDUSD", "USDC", "USDT", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB")


class _Profile:
    __slots__ = ("max_price", "max_qty", "min_notional", "min_price", "step_size", "tick_size")

    def __init__(
        self,
        tick_size: str,
        step_size: str,
        min_notional: str,
        max_price: str = "1000000",
        max_qty: str = "9000000",
    ) -> None:
        self.tick_size = Decimal(tick_size)
        self.step_size = Decimal(step_size)
        self.min_notional = Decimal(min_notional)
        self.min_price = Decimal(tick_size)
        self.max_price = Decimal(max_price)
        self.max_qty = Decimal(max_qty)


_PROFILES: dict[str, _Profile] = {
    "TRUMPUSDC": _Profile("0.01", "0.001", "5", max_price="10000", max_qty="92141578"),
    "TRUMPUSDT": _Profile("0.01", "0.001", "5", max_price="10000", max_qty="92141578"),
    "BTCUSDT": _Profile("0.01", "0.00001", "5", max_qty="9000"),
    "BTCUSDC": _Profile("0.01", "0.00001", "5", max_qty="9000"),
    "BTCBUSD": _Profile("0.01", "0.00001", "5", max_qty="9000"),
    "ETHUSDC": _Profile("0.01", "0.0001", "5", max_qty="9000"),
    "ETHUSDT": _Profile("0.01", "0.0001", "5", max_qty="9000"),
    "SOLUSDC": _Profile("0.01", "0.001", "5", max_qty="9000000"),
    "BNBUSDC": _Profile("0.01", "0.001", "5", max_qty="900000"),
    "DOGEUSDC": _Profile("0.00001", "1", "1", max_qty="9000000000"),
}
_DEFAULT_PROFILE = _Profile("0.01", "0.001", "5")


def _fmt(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.00000001")), "f")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"TRUMPUSDC"`` -> ``("TRUMP", "USDC")`` using the common quote assets."""
    for quote in _QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot tell the base and quote assets of symbol {symbol!r}")


def default_symbol_info(
    symbol: str,
    *,
    tick_size: Decimal | str | None = None,
    step_size: Decimal | str | None = None,
    min_notional: Decimal | str | None = None,
    max_num_orders: int = 200,
) -> dict[str, Any]:
    """An ``exchangeInfo`` symbol entry for ``symbol``.

    Known symbols (TRUMPUSDC: tick 0.01, step 0.001, min notional 5; BTCUSDT, BTCUSDC,
    BTCBUSD: tick 0.01, step 0.00001; ETHUSDC, ETHUSDT: tick 0.01, step 0.0001; SOLUSDC,
    BNBUSDC: tick 0.01, step 0.001; DOGEUSDC: tick 0.00001, step 1, min notional 1) get
    their usual filters; any other
    symbol whose quote asset is recognised gets tick 0.01, step 0.001, min notional 5.
    The keyword arguments override the profile.
    """
    symbol = symbol.upper()
    base, quote = split_symbol(symbol)
    profile = _PROFILES.get(symbol, _DEFAULT_PROFILE)
    tick = Decimal(str(tick_size)) if tick_size is not None else profile.tick_size
    step = Decimal(str(step_size)) if step_size is not None else profile.step_size
    notional = Decimal(str(min_notional)) if min_notional is not None else profile.min_notional
    min_price = tick if tick_size is not None else profile.min_price
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _fmt(min_price),
                "maxPrice": _fmt(profile.max_price),
                "tickSize": _fmt(tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _fmt(step),
                "maxQty": _fmt(profile.max_qty),
                "stepSize": _fmt(step),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": _fmt(profile.max_qty / 10),
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": _fmt(notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": [
            "NONE",
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
            "DECREMENT",
        ],
    }
