"""What every benchmark shares: the machine it ran on, ratios to a baseline, the result file.

A result file, ``bench/results/<name>.json``, holds::

    {"name", "measured_at", "machine": {cpu_model, cores, python, implementation, platform},
     "unit", "figures": {label: value}, "baseline": label, "ratios": {label: value/baseline},
     "targets": {label: max ratio}, "within_target": {label: bool}, "details": {...}}

Ratios are taken against a baseline measured in the same run, on the same machine, so
they can be compared across machines where absolute figures cannot.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """The machine a figure was measured on."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def ratios(figures: Mapping[str, float], baseline: str) -> dict[str, float]:
    """Each figure divided by the baseline figure (the baseline itself is 1.0)."""
    base = figures[baseline]
    if not base:
        raise ValueError(f"baseline {baseline!r} is zero: no ratio can be taken")
    return {label: round(value / base, 3) for label, value in figures.items()}


def write_result(
    name: str,
    figures: Mapping[str, float],
    *,
    unit: str,
    baseline: str | None = None,
    targets: Mapping[str, float] | None = None,
    details: Mapping[str, Any] | None = None,
    results_dir: Path = RESULTS,
) -> Path:
    """Write ``<results_dir>/<name>.json`` and return its path.

    ``baseline`` names one of ``figures``; every figure's ratio to it is recorded.
    ``targets`` maps labels to the largest acceptable ratio.
    """
    result: dict[str, Any] = {
        "name": name,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "unit": unit,
        "figures": dict(figures),
    }
    if baseline is not None:
        if baseline not in figures:
            raise ValueError(f"baseline {baseline!r} is not one of the figures")
        result["baseline"] = baseline
        result["ratios"] = ratios(figures, baseline)
        if targets:
            result["targets"] = dict(targets)
            result["within_target"] = {
                label: result["ratios"][label] <= limit for label, limit in targets.items()
            }
    elif targets:
        raise ValueError("targets are ratios: name a baseline")
    if details:
        result["details"] = dict(details)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
