"""The order-update function acts only on the listener's OrderUpdated for the stack's symbols.

Anything else (another source, another detail-type, another symbol, a cycle's order
reported on a symbol other than its cycle's) is answered
``ignored`` with the reason and counted, and nothing is applied; it is not raised, so
Lambda's asynchronous retries do not deliver it again. So is an update the books turn
down as another stack's order (another client order id prefix).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from flipbot.settings import _TABLE_VARS, Settings

TABLE_VARS = tuple(_TABLE_VARS.values())
ROOT = Path(__file__).resolve().parents[3]
FILLED = json.loads((ROOT / "events" / "on_order_update_filled.json").read_text())


class _Context:
    function_name = "OnOrderUpdateFunction"
    memory_limit_in_mb = 256
    aws_request_id = "test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:update"


def _handler_module(
    monkeypatch: pytest.MonkeyPatch,
    applied: list[Any],
    prefixes: list[str] | None = None,
    outcome: dict[str, Any] | None = None,
    symbols: str = "",
) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "flipbot")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "flipbot")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    spec = importlib.util.spec_from_file_location(
        "on_order_update_app_under_test", ROOT / "functions" / "on_order_update" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings = Settings.from_env(
        {
            "SYMBOL": "TRUMPUSDC",
            "SYMBOLS": symbols,
            "ORDER_ID_PREFIX": "fb51af3dc0",
            **{var: var.lower() for var in TABLE_VARS},
        }
    )
    services = SimpleNamespace(
        settings=settings,
        repos=None,
        workflow=None,
        clock=SimpleNamespace(now_ms=lambda: 0),
        for_symbol=lambda symbol: SimpleNamespace(
            settings=settings.for_symbol(symbol),
            repos=None,
            workflow=None,
            clock=SimpleNamespace(now_ms=lambda: 0),
        ),
    )
    monkeypatch.setattr(module, "container", lambda _context: services)

    def apply(update: Any, *_args: Any, **kwargs: Any) -> dict[str, Any]:
        applied.append(update)
        if prefixes is not None:
            prefixes.append(kwargs["order_id_prefix"])
        return outcome or {"client_order_id": update.client_order_id, "status": update.status}

    monkeypatch.setattr(module, "apply_order_update", apply)
    return module


def _ignored_count(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line)["OrderUpdatesIgnored"]
            return sum(float(v) for v in (value if isinstance(value, list) else [value]))
    raise AssertionError(f"no EMF blob in {output!r}")


def _with(**changes: Any) -> dict[str, Any]:
    event = json.loads(json.dumps(FILLED))
    detail = changes.pop("detail", {})
    event.update(changes)
    event["detail"].update(detail)
    return event


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (_with(source="someone.else"), "someone.else"),
        (_with(**{"detail-type": "OrderFilledByHand"}), "OrderFilledByHand"),
        (_with(**{"detail-type": "PriceTicked"}), "PriceTicked"),
        (_with(detail={"symbol": "BTCUSDC"}), "BTCUSDC"),
    ],
    ids=["wrong-source", "unknown-detail-type", "other-detail-type", "other-symbol"],
)
def test_given_an_event_that_is_not_the_stack_s_order_update_then_it_is_ignored_and_counted(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    event: dict[str, Any],
    named: str,
) -> None:
    applied: list[Any] = []
    module = _handler_module(monkeypatch, applied)
    # When the function gets it
    result = module.handler(event, _Context())
    # Then nothing is applied, the answer names what is wrong, and it is counted
    assert applied == []
    assert result["action"] == "ignored"
    assert named in result["reason"]
    assert _ignored_count(capsys.readouterr().out) == 1


def test_given_the_listener_s_order_update_for_the_symbol_then_it_is_applied(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    applied: list[Any] = []
    prefixes: list[str] = []
    module = _handler_module(monkeypatch, applied, prefixes)
    result = module.handler(_with(), _Context())
    assert [u.client_order_id for u in applied] == ["fb51af3dc0-c000001-B1"]
    assert result == {"client_order_id": "fb51af3dc0-c000001-B1", "status": "FILLED"}
    assert _ignored_count(capsys.readouterr().out) == 0
    # applied with the stack's own client order id prefix, from its settings
    assert prefixes == ["fb51af3dc0"]


def test_given_another_stack_s_order_then_the_update_is_answered_ignored_and_counted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the books turn down an update of another stack's order (another id prefix)
    reason = "order fb0badcafe-c000001-B1 is another stack's (prefix 'fb0badcafe')"
    outcome = {"client_order_id": "fb0badcafe-c000001-B1", "action": "ignored", "reason": reason}
    module = _handler_module(monkeypatch, [], outcome=outcome)
    # When the function gets it
    result = module.handler(_with(detail={"client_order_id": "fb0badcafe-c000001-B1"}), _Context())
    # Then it answers ignored with the reason, and counts it
    assert result == {"action": "ignored", "reason": reason}
    assert _ignored_count(capsys.readouterr().out) == 1


def test_given_a_warm_sandbox_then_an_invocation_logs_no_order_id_of_the_one_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given one sandbox has applied an order update (its logs carry the client order id)
    module = _handler_module(monkeypatch, [])
    module.handler(_with(), _Context())
    # (what each log call of the next invocation carries: the logger's keys at the call)
    carried: list[dict[str, Any]] = []

    def warning(message: str, *args: Any, **kwargs: Any) -> None:
        carried.append({**module.logger.get_current_keys(), "message": message})

    monkeypatch.setattr(module.logger, "warning", warning)
    # When the next invocation is an event of another source
    module.handler(_with(source="someone.else"), _Context())
    # Then its log lines name no order: the id was the previous invocation's
    assert [entry["message"] for entry in carried] == ["order update ignored"]
    assert "client_order_id" not in carried[0]


@pytest.mark.parametrize(
    ("coid", "symbol", "applied_as"),
    [
        ("fb51af3dc0-BTCUSDC_c000002-S1", "BTCUSDC", "BTCUSDC"),
        ("fb51af3dc0-c000002-S1", "TRUMPUSDC", "TRUMPUSDC"),
        ("web_4f1c2a", "ETHUSDC", "ETHUSDC"),
        # SOLUSDC left SYMBOLS while its cycle was open: that cycle is followed to its end
        ("fb51af3dc0-SOLUSDC_c000004-S2", "SOLUSDC", "SOLUSDC"),
        # its sell canceled in the app: the report's own id is the cancel's, the order's
        # is the original one
        ("web_cancel_7f3a", "SOLUSDC", "SOLUSDC"),
    ],
    ids=[
        "other-chain",
        "home-chain",
        "manual-on-a-listed-symbol",
        "removed-symbol-s-cycle",
        "removed-symbol-s-cycle-canceled",
    ],
)
def test_given_several_symbols_then_each_report_is_applied_as_its_own_symbol_s(
    monkeypatch: pytest.MonkeyPatch, coid: str, symbol: str, applied_as: str
) -> None:
    seen: list[str] = []
    module = _handler_module(monkeypatch, [], symbols="TRUMPUSDC,BTCUSDC,ETHUSDC")
    monkeypatch.setattr(
        module,
        "apply_order_update",
        lambda update, *_a, follow_manual, **_k: seen.append(update.symbol) or {"ok": True},
    )
    detail = {"client_order_id": coid, "symbol": symbol}
    if coid.startswith("web_cancel"):
        detail |= {
            "execution_type": "CANCELED",
            "status": "CANCELED",
            "orig_client_order_id": "fb51af3dc0-SOLUSDC_c000004-S2",
        }
    result = module.handler(_with(detail=detail), _Context())
    assert result == {"ok": True}
    assert seen == [applied_as]


@pytest.mark.parametrize(
    ("coid", "symbol", "named"),
    [
        # a BTCUSDC cycle's order reported on ETHUSDC: forged or crossed, never applied
        ("fb51af3dc0-BTCUSDC_c000002-B1", "ETHUSDC", "BTCUSDC cycle"),
        ("fb51af3dc0-c000002-B1", "BTCUSDC", "TRUMPUSDC cycle"),
        # a manual order on a symbol the stack does not trade
        ("web_4f1c2a", "SOLUSDC", "SOLUSDC"),
    ],
    ids=["cycle-of-another-symbol", "home-cycle-on-another-symbol", "unlisted-manual"],
)
def test_given_several_symbols_then_a_report_crossing_symbols_is_ignored_and_counted(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    coid: str,
    symbol: str,
    named: str,
) -> None:
    applied: list[Any] = []
    module = _handler_module(monkeypatch, applied, symbols="TRUMPUSDC,BTCUSDC,ETHUSDC")
    result = module.handler(_with(detail={"client_order_id": coid, "symbol": symbol}), _Context())
    assert applied == []
    assert result["action"] == "ignored"
    assert named in result["reason"]
    assert _ignored_count(capsys.readouterr().out) == 1
