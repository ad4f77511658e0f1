"""IAM in the twin, on the real template: a missing grant fails where AWS would fail.

A copy of ``template.yaml`` (its code paths made absolute, so it can live in a temporary
folder) loses one grant; the replay then hits ``AccessDeniedException`` from the role of
the function that needed it, names the action and the resource, and the report's
``iam_every_call_allowed`` is false. The real template's replay is the control.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
ORDERS_CRUD = "        - DynamoDBCrudPolicy: {TableName: !Ref OrdersTable}\n"


def _template_without_orders_crud_on_place_order(folder: Path) -> Path:
    text = TEMPLATE.read_text(encoding="utf-8")
    # Local paths (CodeUri, ContentUri, DefinitionUri) become absolute.
    text = re.sub(
        r"^(\s*(?:CodeUri|ContentUri|DefinitionUri): )(\S+)$",
        lambda m: f"{m.group(1)}{(ROOT / m.group(2)).as_posix()}",
        text,
        flags=re.MULTILINE,
    )
    start = text.index("  PlaceOrderFunction:\n")
    end = text.index("\n  OnOrderUpdateFunction:\n")
    block = text[start:end]
    assert block.count(ORDERS_CRUD) == 1
    text = text[:start] + block.replace(ORDERS_CRUD, "") + text[end:]
    path = folder / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _replay(template: Path) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    report = run_replay(
        ReplayConfig(
            data=generate_sample(seed=7, hours=1),
            symbol="TRUMPUSDC",
            template=template,
            progress=False,
            max_cycles=1,
        ),
        out=out,
    )
    return report, out.getvalue()


@pytest.fixture(scope="module")
def without_grant(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return _replay(_template_without_orders_crud_on_place_order(tmp_path_factory.mktemp("iam")))


def test_given_place_order_without_orders_crud_then_the_replay_is_denied_there(
    without_grant: tuple[dict[str, Any], str],
) -> None:
    report, printed = without_grant
    assert report["invariants"]["iam_every_call_allowed"] is False
    denied = report["iam"]["denied"]
    assert denied, "the replay should have been refused a call"
    assert all(d.startswith("PlaceOrderFunction: dynamodb:") for d in denied)
    assert all(":table/flipbot-local-OrdersTable" in d for d in denied)
    # What the state machine caught is AWS's own error, naming role, action and resource.
    assert "AccessDeniedException" in printed
    assert re.search(
        r"assumed-role/PlaceOrderFunctionRole/PlaceOrderFunction is not authorized to "
        r"perform: dynamodb:\w+ on resource: arn:aws:dynamodb:us-east-1:123456789012:"
        r"table/flipbot-local-OrdersTable",
        printed,
    )
    assert report["orders_placed"] == 0  # nothing reached the exchange
    assert report["iam"]["principals"]["PlaceOrderFunction"]["denied"] == len(denied)


def test_given_the_real_template_then_every_call_is_allowed_and_each_role_used_its_own() -> None:
    report, _ = _replay(TEMPLATE)
    assert report["invariants"]["iam_every_call_allowed"] is True
    assert report["iam"]["denied"] == []
    principals = report["iam"]["principals"]
    # The functions, the state machine (invoking them) and the listener all made calls.
    assert {"ConsultAiFunction", "PlaceOrderFunction", "StateMachine", "ListenerTaskRole"} <= set(
        principals
    )
    assert any(u.startswith("lambda:InvokeFunction ") for u in principals["StateMachine"]["used"])
    assert set(principals["ListenerTaskRole"]["used"]) <= {
        "events:PutEvents arn:aws:events:us-east-1:123456789012:event-bus/flipbot-local-bus",
        "dynamodb:PutItem arn:aws:dynamodb:us-east-1:123456789012:table/flipbot-local-MarketTable",
    }
