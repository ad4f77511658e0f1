"""A function's handler file loaded as the Lambda runtime loads it, and what it printed.

Shared by the handler tests of this folder: ``load_handler`` imports
``functions/<name>/app.py`` under a module name of its own (with metrics on, in the
``flipbot`` namespace) and replaces what the test names (``container=...``);
``Context`` stands in for the Lambda context; ``emitted_metrics`` merges every EMF blob
a handler printed.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_handler(monkeypatch: pytest.MonkeyPatch, function: str, **replace: Any) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "flipbot")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "flipbot")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    spec = importlib.util.spec_from_file_location(
        f"{function}_app_under_test", ROOT / "functions" / function / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, value in replace.items():
        monkeypatch.setattr(module, name, value)
    return module


class NoServices:
    """A container whose symbol views are None: for handlers whose use case is replaced."""

    def for_cycle(self, _cycle_id: str) -> None:
        return None

    def for_symbol(self, _symbol: str) -> None:
        return None


@dataclass(frozen=True)
class Context:
    """The attributes of the Lambda context that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "test"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"


def emitted_metrics(output: str) -> dict[str, Any]:
    """Every EMF blob in ``output`` merged into one: metric name -> value, and ``_aws``."""
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.update(json.loads(line))
    return found
