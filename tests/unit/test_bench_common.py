"""``bench/common.py``: the result file every benchmark writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "bench" / "common.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_result_holds_figures_ratios_targets_and_the_machine(tmp_path: Path) -> None:
    common = _common()
    path = common.write_result(
        "demo",
        {"boto3": 200.0, "handler": 300.0},
        unit="ms",
        baseline="boto3",
        targets={"handler": 2.0},
        details={"runs": 3},
        results_dir=tmp_path,
    )
    assert path == tmp_path / "demo.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["ratios"] == {"boto3": 1.0, "handler": 1.5}
    assert result["within_target"] == {"handler": True}
    assert result["details"] == {"runs": 3}
    assert set(result["machine"]) >= {"cpu_model", "cores", "python", "platform"}


def test_targets_need_a_baseline_that_is_a_figure(tmp_path: Path) -> None:
    common = _common()
    with pytest.raises(ValueError, match="baseline"):
        common.write_result("x", {"a": 1.0}, unit="ms", baseline="b", results_dir=tmp_path)
    with pytest.raises(ValueError, match="name a baseline"):
        common.write_result("x", {"a": 1.0}, unit="ms", targets={"a": 1}, results_dir=tmp_path)


def test_table_aligns_columns() -> None:
    text = _common().table(["name", "ms"], [["boto3", 200], ["on_order_update", 1234]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].startswith("boto3 ")
