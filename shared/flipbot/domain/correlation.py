"""How the traded pair moves with a reference pair (BTC): the correlation of their
1-minute returns.

:class:`ReturnCorrelation` keeps the closes of the last ``window`` minutes of both
series, keyed by the minute they close, and gives the Pearson correlation of the
minute-to-minute returns of the minutes both have (``-1`` .. ``1``). Fewer than
``min_pairs`` such returns, or a series that did not move, give ``None``: unknown, not
zero. The window is by the clock: after an outage, minutes older than ``window`` before
the latest close of either series no longer count.
"""

from __future__ import annotations

import math

__all__ = ["OWN", "REFERENCE", "ReturnCorrelation"]

OWN, REFERENCE = 0, 1


class ReturnCorrelation:
    """The correlation of two series' 1-minute returns over a rolling window."""

    def __init__(self, window: int = 60, min_pairs: int = 20) -> None:
        if window < 2 or not 2 <= min_pairs <= window:
            raise ValueError("window >= 2 and 2 <= min_pairs <= window")
        self.window = window
        self.min_pairs = min_pairs
        self._closes: tuple[dict[int, float], dict[int, float]] = ({}, {})

    def on_close(self, series: int, minute: int, close: float) -> None:
        """The close of ``minute`` (minutes since the epoch) for ``series``
        (:data:`OWN` or :data:`REFERENCE`); a later close of the same minute replaces it."""
        if not math.isfinite(close) or close <= 0:
            return
        closes = self._closes[series]
        closes[minute] = close
        latest = max(closes)
        for old in [m for m in closes if m < latest - self.window]:
            del closes[old]

    def value(self) -> float | None:
        """The correlation, rounded to 4 decimals, or ``None`` (see the module docstring)."""
        own, ref = self._closes
        if not own or not ref:
            return None
        since = max(*own, *ref) - self.window  # the last hour, by the clock
        pairs = [
            (math.log(own[m] / own[m - 1]), math.log(ref[m] / ref[m - 1]))
            for m in sorted(own.keys() & ref.keys())
            if m - 1 >= since and m - 1 in own and m - 1 in ref
        ]
        if len(pairs) < self.min_pairs:
            return None
        n = len(pairs)
        mean_x = sum(x for x, _ in pairs) / n
        mean_y = sum(y for _, y in pairs) / n
        cov = sum((x - mean_x) * (y - mean_y) for x, y in pairs)
        var_x = sum((x - mean_x) ** 2 for x, _ in pairs)
        var_y = sum((y - mean_y) ** 2 for _, y in pairs)
        if var_x <= 0 or var_y <= 0:
            return None
        return round(max(-1.0, min(1.0, cov / math.sqrt(var_x * var_y))), 4)
