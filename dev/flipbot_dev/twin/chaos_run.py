"""Many seeded chaos replays, and the table that says whether money stayed safe."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipbot_dev.twin.chaos import PROFILES, SCENARIOS
from flipbot_dev.twin.world import WORLD_SCENARIOS


@dataclass(frozen=True)
class ChaosRun:
    scenario: str
    seed: int
    cycles: int
    duplicated: int
    reordered: int
    gaps: int
    crashes: int
    faults: int
    dead_letters: int
    violations: tuple[str, ...]
    stop_loss_exits: int = 0
    overlapped: int = 0
    injections: tuple[tuple[str, int], ...] = ()  # the world's, by kind


def plan(profile: str, seeds: int) -> list[tuple[str, int]]:
    """(scenario, seed) pairs: ``all`` spreads the seeds over every scenario in turn,
    ``world`` over the hostile world's (:data:`~flipbot_dev.twin.world.WORLD_SCENARIOS`)."""
    if profile in ("all", "world"):
        chosen = SCENARIOS if profile == "all" else WORLD_SCENARIOS
        return [(chosen[i % len(chosen)], i + 1) for i in range(seeds)]
    if profile not in PROFILES:
        raise ValueError(f"unknown chaos profile {profile!r}: all, world, {', '.join(PROFILES)}")
    return [(profile, i + 1) for i in range(seeds)]


def run_one(
    scenario: str,
    seed: int,
    template: Path,
    hours: float = 6.0,
    symbol: str = "TRUMPUSDC",
    parameters: tuple[tuple[str, str], ...] = (),
    symbols: tuple[str, ...] = (),
) -> ChaosRun:
    """One replay of a seeded sample market under one seeded scenario; with ``symbols``
    (several), one correlated market each and the stack trading them all."""
    from flipbot_dev.replay.sample import generate_markets, generate_sample
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    if len(symbols) > 1:
        data, *others = generate_markets(symbols, seed=seed, hours=hours).values()
        symbol = symbols[0]
    else:
        symbol = symbols[0] if symbols else symbol
        data, others = generate_sample(seed=seed, hours=hours, symbol=symbol), []
    report = run_replay(
        ReplayConfig(
            data=data,
            others=tuple(others),
            symbol=symbol,
            template=template,
            progress=False,
            chaos=scenario,
            chaos_seed=seed,
            parameters=dict(parameters),
        ),
        out=io.StringIO(),
    )
    stats = report.get("chaos", {})
    return ChaosRun(
        scenario=scenario,
        seed=seed,
        cycles=report["cycles_completed"],
        duplicated=stats.get("duplicated", 0),
        reordered=stats.get("reordered", 0),
        gaps=stats.get("gaps", 0),
        crashes=stats.get("crashes", 0),
        faults=stats.get("faults", 0),
        dead_letters=report["dead_letters"],
        violations=tuple(sorted(k for k, ok in report["invariants"].items() if not ok)),
        stop_loss_exits=report["stop_loss_exits"],
        overlapped=stats.get("overlapped", 0),
        injections=tuple(sorted(stats.get("injections", {}).items())),
    )


def _run_job(
    job: tuple[str, int, Path, float, tuple[tuple[str, str], ...], tuple[str, ...]],
) -> ChaosRun:
    scenario, seed, template, hours, parameters, symbols = job
    return run_one(scenario, seed, template, hours, parameters=parameters, symbols=symbols)


def run_many(
    profile: str,
    seeds: int,
    *,
    template: Path,
    hours: float = 6.0,
    workers: int | None = None,
    progress: Callable[[ChaosRun], None] | None = None,
    parameters: Mapping[str, str] | None = None,
    symbols: tuple[str, ...] = (),
) -> list[ChaosRun]:
    """Every (scenario, seed) of ``plan``; ``parameters`` override the template's;
    ``symbols``: the stack trades several (see :func:`run_one`)."""
    fixed = tuple(sorted((parameters or {}).items()))
    planned = plan(profile, seeds)
    if len(symbols) > 1 and any(scenario in WORLD_SCENARIOS for scenario, _ in planned):
        raise ValueError(
            f"--chaos {profile} with several symbols: the hostile world's scenarios replay "
            "one symbol; choose a delivery profile "
            f"({', '.join(p for p in PROFILES if p not in WORLD_SCENARIOS and p != 'none')})"
        )
    jobs = [
        (scenario, seed, template, hours, fixed, symbols) for scenario, seed in plan(profile, seeds)
    ]
    workers = workers or min(2, os.cpu_count() or 1)
    results: list[ChaosRun] = []
    if workers <= 1:
        for job in jobs:
            results.append(_run_job(job))
            if progress:
                progress(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for run in pool.map(_run_job, jobs):
            results.append(run)
            if progress:
                progress(run)
    return results


def table(runs: list[ChaosRun]) -> list[dict[str, Any]]:
    """Scenarios x seeds: what was injected and how many invariants broke (must be 0)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = rows.setdefault(
            run.scenario,
            {
                "scenario": run.scenario,
                "seeds": 0,
                "cycles": 0,
                "duplicated": 0,
                "reordered": 0,
                "gaps": 0,
                "crashes": 0,
                "faults": 0,
                "overlapped": 0,
                "stop_loss_exits": 0,
                "dead_letters": 0,
                "injected": 0,
                "injections": {},
                "violations": 0,
            },
        )
        row["seeds"] += 1
        for kind, n in run.injections:
            row["injections"][kind] = row["injections"].get(kind, 0) + n
            row["injected"] += n
        for key in (
            "cycles",
            "duplicated",
            "reordered",
            "gaps",
            "crashes",
            "faults",
            "overlapped",
            "stop_loss_exits",
            "dead_letters",
        ):
            row[key] += getattr(run, key)
        row["violations"] += len(run.violations)
    ordered = [rows[s] for s in (*SCENARIOS, *PROFILES) if s in rows]
    return list({id(r): r for r in ordered}.values())


def format_table(rows: list[dict[str, Any]]) -> str:
    columns = [
        "scenario",
        "seeds",
        "cycles",
        "duplicated",
        "reordered",
        "gaps",
        "crashes",
        "faults",
        "overlapped",
        "dead_letters",
        "injected",
        "violations",
    ]
    total = {c: sum(r[c] for r in rows) for c in columns[1:]}
    lines = ["  ".join(f"{c:>12}" for c in columns)]
    for row in [*rows, {"scenario": "total", **total}]:
        lines.append("  ".join(f"{row[c]!s:>12}" for c in columns))
    for row in rows:
        if row.get("injections"):
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(row["injections"].items()))
            lines.append(f"  {row['scenario']} injected: {kinds}")
    return "\n".join(lines)
