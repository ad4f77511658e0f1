"""``flipbot exchange serve`` and the service behind it: a replayed market on loopback."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException

from flipbot_dev.cli import main
from flipbot_dev.paper.faults import PROFILES
from flipbot_dev.paper.server import ExchangeConfig, http_client, start_exchange
from flipbot_dev.replay.sample import generate_sample


def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)
    assert condition(), "timed out"  # type: ignore[operator]


def test_serve_runs_for_its_duration_and_says_where(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exchange", "serve", "--hours", "0.5", "--speed", "600", "--duration", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "REST: http://127.0.0.1:" in out
    assert "fault profile 'none'" in out
    assert "paper exchange stopped: 0 requests" in out


def test_faults_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exchange", "faults"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(PROFILES)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--faults", "sometimes"], "unknown fault profile 'sometimes'"),
        (["--balance", "USDC"], "expected ASSET=AMOUNT"),
        (["--data", "/nonexistent/TRUMPUSDC-trades-2025-01-01.csv"], "nonexistent"),
        (["--speed", "0"], "--speed must be positive"),
    ],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["exchange", "serve", "--duration", "0", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_replayed_market_on_loopback_trades_with_the_real_client() -> None:
    data = generate_sample(seed=7, hours=1)
    config = ExchangeConfig(data=data, speed=3600.0, balances={"USDC": Decimal("100")})
    with start_exchange(config) as service:
        wait_for(lambda: service.replayer.fed > 100)
        client = http_client(service.base_url)
        assert abs(client.get_server_time()["serverTime"] - time.time() * 1000) < 2_000
        ask = Decimal(client.get_orderbook_ticker(symbol="TRUMPUSDC")["askPrice"])
        placed = client.order_limit_buy(
            symbol="TRUMPUSDC", quantity="0.300", price=str(ask + Decimal("0.05"))
        )
        assert placed["status"] in ("FILLED", "PARTIALLY_FILLED")  # took the shown ask
        assert client.get_my_trades(symbol="TRUMPUSDC")
        assert client.get_klines(symbol="TRUMPUSDC", interval="1m")
        wait_for(service.replayer.finished.is_set)
        assert service.replayer.fed == len(data)
        assert service.exchange.outbox == []  # nobody listens: user events are not hoarded
    assert service.http.requests == 5


def test_a_fault_profile_applies_to_the_served_api() -> None:
    config = ExchangeConfig(
        data=generate_sample(seed=7, hours=0.2), speed=60.0, faults="flaky", seed=3
    )
    with start_exchange(config) as service:
        client = http_client(service.base_url)
        statuses = []
        for _ in range(100):
            try:
                client.ping()
                statuses.append(200)
            except BinanceAPIException as error:
                statuses.append(error.status_code)
    assert set(statuses) == {200, 503}
    assert 1 <= statuses.count(503) <= 15
