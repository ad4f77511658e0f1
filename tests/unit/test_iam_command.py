"""``flipbot iam``: used versus granted, read from replay reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.cli import main

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/stack-OrdersTable"


def _report(used: list[str], denied: list[str], grant_used: list[str]) -> dict[str, Any]:
    return {
        "iam": {
            "calls": len(used) + len(denied),
            "denied": denied,
            "principals": {"PlaceOrderFunction": {"calls": 3, "denied": len(denied), "used": used}},
            "grants": [
                {
                    "principal": "PlaceOrderFunction",
                    "policy": "PlaceOrderFunctionRole/Policy0",
                    "actions": ["dynamodb:GetItem", "dynamodb:PutItem"],
                    "resources": [TABLE],
                    "used": grant_used,
                    "kept_because": "",
                },
                {
                    "principal": "PlaceOrderFunction",
                    "policy": "PlaceOrderFunctionRole/Policy1",
                    "actions": ["logs:PutLogEvents"],
                    "resources": ["*"],
                    "used": [],
                    "kept_because": "the Lambda service writes the function's logs",
                },
            ],
        }
    }


def _write(folder: Path, report: dict[str, Any]) -> str:
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(report))
    return str(folder)


def test_a_grant_no_run_used_is_flagged_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _write(tmp_path / "a", _report([], [], []))
    assert main(["iam", "--run", run]) == 0
    printed = capsys.readouterr().out
    assert "UNUSED  {GetItem, PutItem} on table/stack-OrdersTable" in printed
    assert "kept    logs:PutLogEvents on *  (the Lambda service" in printed
    assert "1 grant(s) nothing used and no reason keeps" in printed
    assert main(["iam", "--run", run, "--strict"]) == 1


def test_runs_combine_and_a_denied_call_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = _write(tmp_path / "a", _report([], [], []))
    busy = _write(
        tmp_path / "b",
        _report(
            [f"dynamodb:GetItem {TABLE}"],
            [f"PlaceOrderFunction: dynamodb:DeleteItem on {TABLE} (DeleteItem)"],
            ["dynamodb:GetItem"],
        ),
    )
    assert main(["iam", "--run", quiet, "--run", busy]) == 1
    printed = capsys.readouterr().out
    assert "1 denied" in printed
    assert "DENIED PlaceOrderFunction: dynamodb:DeleteItem" in printed
    assert "grant   {GetItem, PutItem} on table/stack-OrdersTable  (used: GetItem)" in printed
    assert "used    dynamodb:GetItem table/stack-OrdersTable" in printed
    assert "0 grant(s) nothing used" in printed


def test_a_folder_without_a_report_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no report\.json in"):
        main(["iam", "--run", str(tmp_path)])
