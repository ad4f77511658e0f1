"""The correlation of the traded pair's 1-minute returns with a reference pair's."""

from __future__ import annotations

import math
import random

import pytest

from flipbot.domain.correlation import OWN, REFERENCE, ReturnCorrelation


def _feed(corr: ReturnCorrelation, own: list[float], ref: list[float], start: int = 1000) -> None:
    for i, (a, b) in enumerate(zip(own, ref, strict=True)):
        corr.on_close(OWN, start + i, a)
        corr.on_close(REFERENCE, start + i, b)


def _walk(seed: int, n: int = 61) -> list[float]:
    rng = random.Random(seed)
    prices = [100.0]
    for _ in range(n - 1):
        prices.append(prices[-1] * math.exp(rng.gauss(0, 0.002)))
    return prices


def test_a_pair_that_moves_with_the_reference_correlates_near_one() -> None:
    ref = _walk(1)
    own = [p / 4 for p in ref]  # the same returns at another price level
    corr = ReturnCorrelation()
    _feed(corr, own, ref)
    assert corr.value() == 1.0


def test_a_mirror_image_correlates_near_minus_one_and_independent_walks_near_zero() -> None:
    ref = _walk(2)
    mirror = [100.0 * 100.0 / p for p in ref]  # every return negated
    corr = ReturnCorrelation()
    _feed(corr, mirror, ref)
    assert corr.value() == -1.0
    independent = ReturnCorrelation()
    _feed(independent, _walk(3), _walk(4))
    value = independent.value()
    assert value is not None
    assert abs(value) < 0.35


def test_too_few_common_minutes_or_a_flat_series_is_unknown() -> None:
    corr = ReturnCorrelation(min_pairs=20)
    _feed(corr, _walk(5, 15), _walk(6, 15))
    assert corr.value() is None  # 14 returns
    flat = ReturnCorrelation()
    _feed(flat, [10.0] * 61, _walk(7))
    assert flat.value() is None


def test_only_minutes_both_series_closed_count_and_the_window_rolls() -> None:
    corr = ReturnCorrelation(window=30, min_pairs=20)
    ref = _walk(8, 200)
    for i, p in enumerate(ref):
        corr.on_close(REFERENCE, i, p)
        if i % 7:  # the traded pair misses every seventh minute
            corr.on_close(OWN, i, p * 2)
    assert corr.value() == 1.0
    assert all(len(series) <= 31 for series in corr._closes)


def test_after_an_outage_minutes_older_than_the_window_no_longer_count() -> None:
    corr = ReturnCorrelation(window=60, min_pairs=20)
    _feed(corr, [p / 2 for p in _walk(9, 40)], _walk(9, 40), start=1000)
    assert corr.value() == 1.0
    # two hours later the reference pair closes again, the traded pair not yet
    corr.on_close(REFERENCE, 1000 + 40 + 120, 60_000.0)
    assert corr.value() is None


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_close_that_is_no_price_is_ignored(bad: float) -> None:
    corr = ReturnCorrelation(window=5, min_pairs=2)
    corr.on_close(OWN, 1, bad)
    assert corr._closes[OWN] == {}
