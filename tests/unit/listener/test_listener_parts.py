"""Small parts of the listener: signing, back-off, metrics, health check, lean imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flipbot.listener.binance_ws import sign_hmac, signature_payload, subscribe_signature_params
from flipbot.listener.health import main as health_main
from flipbot.listener.metrics import (
    CloudWatchMetrics,
    LagHistogram,
    lag_bucket,
    percentile,
)
from flipbot.listener.service import Backoff

# Binance's HMAC example for the WebSocket API (web-socket-api.md, "SIGNED request
# example (HMAC)"): these parameters and secret give this signature.
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000000",
    "price": "52000.00",
    "newOrderRespType": "ACK",
    "recvWindow": 100,
    "timestamp": 1645423376532,
    "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
}
DOC_SIGNATURE = "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


def test_signing_matches_binance_documented_hmac_example() -> None:
    assert signature_payload(DOC_PARAMS).startswith("apiKey=vmPU")
    assert sign_hmac(DOC_PARAMS, DOC_SECRET) == DOC_SIGNATURE
    assert sign_hmac({**DOC_PARAMS, "signature": "ignored"}, DOC_SECRET) == DOC_SIGNATURE


def test_subscribe_signature_params_are_the_documented_ones_signed() -> None:
    params = subscribe_signature_params(
        "key", "secret", timestamp_ms=1747385641636, recv_window_ms=5000
    )
    assert set(params) == {"apiKey", "recvWindow", "timestamp", "signature"}
    unsigned = {k: v for k, v in params.items() if k != "signature"}
    assert params["signature"] == sign_hmac(unsigned, "secret")


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    low = Backoff(0.5, 8, rng=lambda: 0.0)
    high = Backoff(0.5, 8, rng=lambda: 1.0)
    assert [low.next() for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [high.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low.reset()
    assert low.next() == 0.25


# --- metrics ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lag", "bucket"),
    [
        (-5, 0),
        (0, 0),
        (37, 37),
        (100, 100),
        (101, 100),
        (999, 990),
        (1234, 1200),
        (12_345, 10_000),
        (10**9, 600_000),
    ],
)
def test_lag_buckets_are_exact_to_100_ms_then_coarser(lag: int, bucket: int) -> None:
    assert lag_bucket(lag) == bucket


def test_lag_histogram_stays_bounded_and_gives_percentiles() -> None:
    histogram = LagHistogram()
    for lag in range(-100, 700_000, 7):
        histogram.add(lag)
    counts = histogram.take()
    assert len(counts) < 450  # memory does not grow with the number of samples
    assert histogram.take() == {}
    assert percentile({5: 50, 10: 49, 900: 1}, 0.5) == 5
    assert percentile({5: 50, 10: 49, 900: 1}, 0.99) == 10
    assert percentile({}, 0.5) is None


def test_cloudwatch_metric_data_has_the_dashboard_names_and_dimension() -> None:
    sink = CloudWatchMetrics(client=None)
    lag = dict.fromkeys(range(200), 1)
    data = sink.metric_data(heartbeat=1, reconnects=3, lag_ms=lag, bad_messages=2)
    assert [d["MetricName"] for d in data] == [
        "ListenerHeartbeat",
        "Reconnects",
        "ListenerBadMessages",
        "ListenerLagMs",
        "ListenerLagMs",
    ]
    assert {json.dumps(d["Dimensions"]) for d in data} == {
        '[{"Name": "service", "Value": "flipbot"}]'
    }
    assert data[2]["Value"] == 2.0
    assert [len(d["Values"]) for d in data[3:]] == [150, 50]
    assert sum(sum(d["Counts"]) for d in data[3:]) == 200


# --- the health check command -------------------------------------------------------------
def test_health_check_fails_when_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: the connection is refused
        assert health_main(["--port", str(port)]) == 1
    assert "no answer" in capsys.readouterr().out
    assert health_main(["--bogus"]) == 2


# --- imports ------------------------------------------------------------------------------
HEAVY = ("boto3", "botocore", "binance", "aiohttp", "pynamodb", "openai", "websockets")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_the_health_check_imports_the_standard_library_only() -> None:
    loaded = _modules_after("import flipbot.listener.health")
    assert not loaded & {*HEAVY, "pydantic", "asyncio", "flipbot_listener_core"}


def test_the_hot_path_imports_nothing_heavy() -> None:
    loaded = _modules_after("import flipbot.listener.core")
    assert not loaded & set(HEAVY)
