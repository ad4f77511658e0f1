"""The composition root: an explicit wiring, a container passed in, nothing to reset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from flipbot import composition
from flipbot.composition import Containers, Wiring, container

ENV = {"SYMBOL": "TRUMPUSDC", "AWS_REGION": "ap-northeast-1"}


@dataclass
class _Clock:
    at: int

    def now_ms(self) -> int:
        return self.at


@dataclass
class _Context:
    services: Any = None


def test_given_a_container_in_the_context_then_the_handler_gets_that_one() -> None:
    mine = composition.Container(ENV, Wiring({"clock": lambda _: _Clock(7)}))
    assert container(_Context(services=mine)) is mine


def test_given_no_container_then_the_sandbox_keeps_one_per_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLIPBOT_TEST_MARKER", "a")
    first = container(_Context())
    assert container(None) is first  # warm: the same one on the next invocation
    assert first.wiring == Wiring()  # the production wiring: nothing replaced
    monkeypatch.setenv("FLIPBOT_TEST_MARKER", "b")
    assert container(None) is not first


def test_two_wirings_in_one_process_do_not_see_each_other() -> None:
    one = Containers(Wiring({"clock": lambda _: _Clock(1)}))
    two = Containers(Wiring({"clock": lambda _: _Clock(2)}))
    assert one.for_env(ENV).clock.now_ms() == 1
    assert two.for_env(ENV).clock.now_ms() == 2
    assert one.for_env(ENV) is one.for_env(dict(ENV))
    assert one.for_env(ENV) is not two.for_env(ENV)


def test_decorators_wrap_the_part_they_name() -> None:
    wrapped: list[Any] = []

    def wrap(part: Any) -> Any:
        wrapped.append(part)
        return ("wrapped", part)

    built = Containers(Wiring({"repos": lambda _: "table"}, {"repos": wrap})).for_env(ENV)
    assert built.repos == ("wrapped", "table")
    assert wrapped == ["table"]


def test_the_module_offers_no_way_to_rewire_it_at_run_time() -> None:
    for name in ("configure", "decorate", "reset"):
        assert not hasattr(composition, name)


TABLES = {
    var: var.lower()
    for var in (
        "CYCLES_TABLE",
        "ORDERS_TABLE",
        "FILLS_TABLE",
        "TRADES_TABLE",
        "CONSULTATIONS_TABLE",
        "MARKET_TABLE",
    )
}


def test_each_symbol_s_view_has_its_settings_and_its_own_strategy() -> None:
    built: list[str] = []

    def decider(part: Any) -> str:
        built.append(part.settings.symbol)
        return f"decider of {part.settings.symbol}"

    env = {
        **ENV,
        **TABLES,
        "SYMBOLS": "TRUMPUSDC,BTCUSDC",
        "SYMBOL_SETTINGS": "BTCUSDC:quote=20",
        "STRATEGY": "ma-cross",
    }
    stack = composition.Container(env, Wiring({"clock": lambda _: _Clock(7), "decider": decider}))
    btc = stack.for_cycle("BTCUSDC_c000003")
    assert stack.for_cycle("c000003") is stack
    assert btc is stack.for_symbol("BTCUSDC")  # one view a symbol, kept warm
    assert (btc.settings.symbol, btc.settings.quote_per_cycle) == ("BTCUSDC", 20)
    assert btc.clock is stack.clock
    # a decision maker is built for the symbol's view, not shared with the stack's SYMBOL
    assert btc.decider == "decider of BTCUSDC"
    assert stack.decider == "decider of TRUMPUSDC"
    assert built == ["BTCUSDC", "TRUMPUSDC"]
