"""``flipbot account`` against the project's paper exchange, served over HTTP on 127.0.0.1.

The account is funded and its orders placed through python-binance, as a user would;
the command reads it with the bot's adapter, from the environment's key pair or a
stack's secret (moto's Secrets Manager behind a stand-in for CloudFormation).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from flipbot_dev.cli import main
from flipbot_dev.commands import account as account_command
from flipbot_dev.paper import BinanceRestApp, PaperExchange
from flipbot_dev.paper.server import PaperHttpServer, http_client

KEY, SECRET = "AccountKey0123", "account-SECRET-9876543210"
ENV_NAMES = ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_BASE_URL")
OLD_MS = 300_000  # the TRUMP sell was placed five minutes before the others


@dataclass
class Paper:
    exchange: PaperExchange
    server: PaperHttpServer

    @property
    def url(self) -> str:
        return self.server.base_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def paper() -> Iterator[Paper]:
    """USDC 1000, TRUMP 10, ETH 0; three resting orders on two symbols, placed out of
    the order the command sorts them in, one of them partly filled."""
    shift = [OLD_MS]

    def clock() -> int:
        return time.time_ns() // 1_000_000 - shift[0]

    exchange = PaperExchange(
        ["TRUMPUSDC", "BTCUSDC"], clock=clock, balances={"USDC": 1000, "TRUMP": 10, "ETH": 0}
    )
    exchange.on_book(clock(), "10.00", "5", "10.01", "5", symbol="TRUMPUSDC")
    exchange.on_book(clock(), "65000.00", "1", "65000.01", "1", symbol="BTCUSDC")
    server = PaperHttpServer(BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET)).start()
    try:
        client = http_client(server.base_url, KEY, SECRET, clock=clock)
        client.order_limit_sell(
            symbol="TRUMPUSDC", quantity="1", price="10.50", newClientOrderId="acct-trump-s"
        )
        shift[0] = 0  # the server's clock is the wall clock from now on
        client.order_limit_buy(
            symbol="BTCUSDC", quantity="0.001", price="60000", newClientOrderId="acct-btc-b"
        )
        client.order_limit_buy(
            symbol="TRUMPUSDC", quantity="2", price="9.50", newClientOrderId="acct-trump-b"
        )
        # fills 0.5 of the TRUMP buy
        exchange.on_trade(clock(), "9.49", "0.5", True, symbol="TRUMPUSDC")
        exchange.drain()
        yield Paper(exchange, server)
    finally:
        server.stop()


def account(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["account", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_shows_each_balance_and_the_open_orders_sorted(
    paper: Paper, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)

    code, out, err = account(capsys, "--base-url", paper.url)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"account at {paper.url} (key from $BINANCE_API_KEY), ")
    assert lines[2] == "balances (2):"
    balances = [line.split() for line in lines[3:7]]
    assert balances == [
        ["asset", "free", "locked", "total"],
        ["-----", "------", "------", "-------"],
        ["TRUMP", "9.4995", "1", "10.4995"],  # 0.5 bought less the 0.1 % fee in TRUMP
        ["USDC", "921", "74.25", "995.25"],  # 1.5 x 9.50 + 0.001 x 60000 locked
    ]
    assert "ETH" not in out  # a zero balance is left out
    assert lines[8] == "open orders (3):"
    orders = [re.split(r"\s{2,}", line.strip()) for line in lines[11:]]
    assert [row[:6] for row in orders] == [
        ["BTCUSDC", "BUY", "60000", "0.001", "0", "acct-btc-b"],
        ["TRUMPUSDC", "BUY", "9.5", "2", "0.5", "acct-trump-b"],
        ["TRUMPUSDC", "SELL", "10.5", "1", "0", "acct-trump-s"],
    ]
    assert re.fullmatch(r"[0-9]s", orders[0][6])
    assert re.fullmatch(r"5m 0[0-9]s", orders[2][6])
    assert SECRET not in out


def test_json_from_binance_base_url(
    paper: Paper, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("BINANCE_BASE_URL", paper.url + "/")

    code, out, _ = account(capsys, "--json")

    assert code == 0
    document = json.loads(out)
    assert document["endpoint"] == paper.url
    assert document["balances"] == [
        {"asset": "TRUMP", "free": "9.4995", "locked": "1", "total": "10.4995"},
        {"asset": "USDC", "free": "921", "locked": "74.25", "total": "995.25"},
    ]
    orders = document["open_orders"]
    assert [
        (o["symbol"], o["side"], o["price"], o["quantity"], o["filled"], o["client_order_id"])
        for o in orders
    ] == [
        ("BTCUSDC", "BUY", "60000", "0.001", "0", "acct-btc-b"),
        ("TRUMPUSDC", "BUY", "9.5", "2", "0.5", "acct-trump-b"),
        ("TRUMPUSDC", "SELL", "10.5", "1", "0", "acct-trump-s"),
    ]
    assert orders[1]["status"] == "PARTIALLY_FILLED"
    assert 300 <= orders[2]["age_seconds"] < 310
    assert orders[2]["age_seconds"] == (document["time_ms"] - orders[2]["placed_ms"]) // 1000
    assert SECRET not in out


def test_missing_credentials_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)

    code, out, err = account(capsys, "--base-url", "http://127.0.0.1:9")

    assert code == 2
    assert err.startswith("flipbot account: BINANCE_API_KEY not set")
    assert "BINANCE_API_SECRET" not in err  # it is set: only the missing one is named
    assert SECRET not in out + err


def test_a_bad_base_url_exits_2_naming_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)

    code, _, err = account(capsys, "--base-url", "http://127.0.0.1:8080/api")
    assert code == 2
    assert "--base-url 'http://127.0.0.1:8080/api': expected an http(s)://host[:port] root" in err

    monkeypatch.setenv("BINANCE_BASE_URL", "ftp://example")
    code, _, err = account(capsys)
    assert code == 2
    assert "BINANCE_BASE_URL 'ftp://example'" in err


def test_the_exchanges_refusal_exits_1_with_binances_code_and_message(
    paper: Paper, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "not-the-" + SECRET
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", wrong)

    code, out, err = account(capsys, "--base-url", paper.url)

    assert (code, out) == (1, "")
    assert err.startswith(f"flipbot account: {paper.url}: ")
    assert "code -1022: Signature for this request is not valid." in err
    assert wrong not in err


def test_an_unreachable_exchange_exits_1_naming_it(
    paper: Paper, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = paper.url
    paper.server.stop()
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)

    code, _, err = account(capsys, "--base-url", url)

    assert code == 1
    assert err.startswith(f"flipbot account: {url}: balances: ConnectionError")


# --- a deployed stack: its secret, its BinanceBaseUrl ------------------------------------
class FakeCloudFormation:
    """``describe_stacks`` of the stacks deployed in one region (moto's CloudFormation
    needs a package this project does not install)."""

    def __init__(self, region: str) -> None:
        self.meta = SimpleNamespace(region_name=region)
        self.stacks: dict[str, dict[str, Any]] = {}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            error = {
                "Code": "ValidationError",
                "Message": f"Stack with id {StackName} does not exist",
            }
            raise ClientError({"Error": error}, "DescribeStacks")
        return {"Stacks": [self.stacks[StackName]]}


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudFormation]:
    """Secrets Manager in moto, the stacks in eu-west-1 (not the configured region)."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    fake = FakeCloudFormation("eu-west-1")
    asked: list[str | None] = []
    monkeypatch.setattr(
        account_command, "cloudformation_client", lambda region: asked.append(region) or fake
    )
    saved = dict(DEFAULT_PROVIDERS)
    DEFAULT_PROVIDERS.clear()  # no secrets client or cached value from another test
    try:
        with mock_aws():
            yield fake
    finally:
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(saved)
    assert set(asked) <= {"eu-west-1"}


def deploy(cfn: FakeCloudFormation, name: str, base_url: str, secret: dict[str, str]) -> None:
    """A flipbot stack in the fake's region with its Binance secret there."""
    import boto3

    arn = boto3.client("secretsmanager", region_name=cfn.meta.region_name).create_secret(
        Name=f"{name}/binance", SecretString=json.dumps(secret)
    )["ARN"]
    cfn.stacks[name] = {
        "StackName": name,
        "Parameters": [{"ParameterKey": "BinanceBaseUrl", "ParameterValue": base_url}],
        "Outputs": [{"OutputKey": "BinanceSecretArn", "OutputValue": arn}],
    }


def test_a_stack_is_read_with_its_secret_at_its_base_url(
    paper: Paper, cloudformation: FakeCloudFormation, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(cloudformation, "flipbot-paper", paper.url, {"api_key": KEY, "api_secret": SECRET})

    code, out, err = account(capsys, "--stack", "flipbot-paper", "--region", "eu-west-1")

    assert (code, err) == (0, "")
    assert out.startswith(f"account at {paper.url} (stack flipbot-paper's secret), ")
    assert "acct-trump-b" in out
    assert KEY not in out
    assert SECRET not in out
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"  # set back after the read


def test_a_stack_whose_secret_is_the_placeholder_or_unknown_exits_2(
    cloudformation: FakeCloudFormation, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(cloudformation, "flipbot-new", "", {"api_key": "FILL_ME", "api_secret": "FILL_ME"})

    code, _, err = account(capsys, "--stack", "flipbot-new", "--region", "eu-west-1")
    assert code == 2
    assert "stack flipbot-new: its Binance secret arn:aws:secretsmanager:eu-west-1:" in err
    assert "still holds the template's placeholder FILL_ME" in err

    code, _, err = account(capsys, "--stack", "flipbot-gone", "--region", "eu-west-1")
    assert code == 2
    assert err.startswith("flipbot account: stack flipbot-gone: ")
    assert "does not exist" in err
