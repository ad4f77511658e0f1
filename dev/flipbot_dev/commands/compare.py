"""``flipbot compare``: strategies side by side on the same market data, in one table.

Each (dataset, strategy) pair is a full replay of the digital twin (the deployed system
on moto against the paper exchange), so the figures are what the bot would have done.
Per dataset a buy-and-hold row gives the market's own return for reference: the whole
initial balance bought at the first price and sold at the last, paying the taker fee
both ways.

The table is printed and written as ``compare.csv`` and ``compare.md`` in ``--out``;
each replay's report, trades, tables and plots go to ``--out/<dataset>/<strategy>/``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from flipbot_dev.commands._table import csv_table, markdown_table, text_table
from flipbot_dev.commands._template import add_template_argument, checked_template
from flipbot_dev.commands.presets import PRESETS, Setup, setup

BUNDLED = "bundled"
DEFAULT_STRATEGIES = ("offline", "fixed", "adaptive", "ma-cross", "ma-cross-poc")
HEADERS = [
    "dataset",
    "strategy",
    "cycles",
    "net P&L",
    "return %",
    "win rate %",
    "fill rate %",
    "avg fill s",
    "max drawdown %",
    "in position %",
    "invariants",
]


@dataclass(frozen=True)
class Dataset:
    """One market to replay: a file, or the bundled sample (``path`` is ``bundled``)."""

    path: str
    hours: float | None = None
    seed: int = 7
    symbol: str | None = None

    @property
    def bundled(self) -> bool:
        return self.path == BUNDLED

    @property
    def label(self) -> str:
        if self.bundled:
            pair = f" {self.symbol}" if self.symbol else ""
            return f"bundled{pair} seed {self.seed}, {self.hours or 24:g}h"
        name = Path(self.path).stem
        return f"{name}, {self.hours:g}h" if self.hours else name

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("_")


@dataclass(frozen=True)
class Job:
    dataset: Dataset
    strategy: str
    out_dir: Path
    template: Path
    balance: str = "100"
    parameters: tuple[tuple[str, str], ...] = ()
    #: the row's name: the strategy's, or the preset's that set it up
    name: str = ""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "compare", help="replay strategies on datasets and compare them in one table"
    )
    parser.add_argument(
        "--data",
        nargs="+",
        default=[BUNDLED],
        metavar="FILE",
        help=f"market data files (klines/trades/bookTicker CSV or zip); "
        f"'{BUNDLED}' is the generated sample (default: {BUNDLED})",
    )
    parser.add_argument(
        "--strategy",
        nargs="+",
        default=list(DEFAULT_STRATEGIES),
        metavar="S",
        help=f"decision makers or presets (default: {' '.join(DEFAULT_STRATEGIES)}; "
        "'ai' is the offline strategy without an AI key; a preset runs its strategy with "
        "its balance and parameters, under --balance, --quote-per-cycle and --param "
        "when given)",
    )
    parser.add_argument(
        "--hours",
        type=float,
        help="replay the first H hours of each dataset (bundled: 24 by default)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the bundled sample")
    parser.add_argument(
        "--symbol",
        type=str.upper,
        help="the pair replayed: the bundled sample of that pair (its price, tick and lot "
        "step), or the files' pair (default: from each file's name, or TRUMPUSDC)",
    )
    parser.add_argument("--out", default="out/compare", help="output directory")
    add_template_argument(parser)
    parser.add_argument(
        "--balance", type=_balance, help="initial quote balance (default 100, or the preset's)"
    )
    parser.add_argument(
        "--quote-per-cycle", help="quote spent per cycle (default 10, or the preset's)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter for every run, e.g. MinProfit=0.005",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="replays run in parallel processes (default: 2 or fewer cores)",
    )
    parser.set_defaults(func=run)


def _load(dataset: Dataset) -> Any:
    from flipbot_dev.replay.data import load_market_data
    from flipbot_dev.replay.sample import generate_sample, profile_of

    if dataset.bundled:
        symbol = dataset.symbol or "TRUMPUSDC"
        return generate_sample(
            seed=dataset.seed,
            hours=dataset.hours or 24.0,
            symbol=symbol,
            profile=profile_of(symbol),
        )
    data = load_market_data(Path(dataset.path), symbol=dataset.symbol)
    if dataset.hours:
        data = data.between(data.first_ms, data.first_ms + int(dataset.hours * 3_600_000))
    return data


def run_job(job: Job) -> dict[str, Any]:
    """Replay one (dataset, strategy) pair; the report's comparable figures."""
    import io

    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    data = _load(job.dataset)
    started = time.monotonic()
    config = ReplayConfig(
        data=data,
        symbol=job.dataset.symbol or data.symbol or "TRUMPUSDC",
        template=job.template,
        out_dir=job.out_dir,
        quote_balance=Decimal(job.balance),
        decider=job.strategy,
        progress=False,
        parameters=dict(job.parameters),
    )
    report = run_replay(config, out=io.StringIO())
    return {
        "dataset": job.dataset.label,
        "strategy": job.name or job.strategy,
        "seconds": round(time.monotonic() - started, 1),
        "report": {k: v for k, v in report.items() if k not in ("fill_log", "_trades")},
    }


def row(result: dict[str, Any]) -> list[object]:
    """The table row of one replay (see :data:`HEADERS`)."""
    r = result["report"]
    ok = all(r["invariants"].values())
    failed = [k for k, v in r["invariants"].items() if not v]
    return [
        result["dataset"],
        result["strategy"],
        r["cycles_completed"],
        f"{Decimal(r['net_pnl_usdc']):+.4f}",
        f"{r['return_pct']:+.3f}",
        f"{r['win_rate'] * 100:.1f}",
        f"{r['fill_rate'] * 100:.1f}",
        f"{r['avg_fill_seconds']:.0f}",
        f"{r['max_drawdown_pct']:.2f}",
        f"{r['time_in_position_pct']:.1f}",
        "OK" if ok else "VIOLATED: " + ", ".join(failed),
    ]


def hold_row(result: dict[str, Any]) -> list[object]:
    """The buy-and-hold reference row of a dataset (figures from any replay of it)."""
    r = result["report"]
    start = Decimal(r["initial_equity_usdc"])
    ret = Decimal(str(r["buy_and_hold_return_pct"]))
    return [
        result["dataset"],
        "buy-and-hold",
        "",
        f"{start * ret / 100:+.4f}",
        f"{ret:+.3f}",
        "",
        "",
        "",
        f"{r['buy_and_hold_max_drawdown_pct']:.2f}",
        "100.0",
        "",
    ]


def table_rows(results: Sequence[dict[str, Any]], datasets: Sequence[str]) -> list[list[object]]:
    """Rows grouped by dataset (in the given order), each group ending with buy-and-hold."""
    rows: list[list[object]] = []
    for label in datasets:
        group = [r for r in results if r["dataset"] == label]
        rows += [row(r) for r in group]
        if group:
            rows.append(hold_row(group[0]))
    return rows


def compare(jobs: Sequence[Job], workers: int, out: Any = None) -> list[dict[str, Any]]:
    """Run every job (in ``workers`` processes when more than one); results in job order.

    A line per finished replay goes to ``out`` (standard output by default).
    """
    out = sys.stdout if out is None else out
    results: dict[int, dict[str, Any]] = {}
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            results[i] = run_job(job)
            _progress(results[i], out)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                _progress(results[futures[future]], out)
    return [results[i] for i in range(len(jobs))]


def _progress(result: dict[str, Any], out: Any) -> None:
    print(
        f"  {result['strategy']:>9} on {result['dataset']}: "
        f"{result['report']['cycles_completed']} cycles in {result['seconds']:.0f}s",
        file=out,
        flush=True,
    )


def _setup(name: str | None, args: argparse.Namespace) -> Setup:
    """The run of the row called ``name`` (a strategy, or a preset under the command
    line's ``--balance``, ``--quote-per-cycle`` and ``--param``); ``None``: the command
    line's own set-up, without a strategy of its own."""
    chosen = PRESETS.get(name) if name else None
    return setup(
        chosen,
        strategy=None if chosen else name,
        balance=None if args.balance is None else Decimal(args.balance),
        quote_per_cycle=args.quote_per_cycle,
        params=args.param,
    )


def run(args: argparse.Namespace) -> int:
    from flipbot.app.lab import STRATEGIES
    from flipbot.domain.symbols import SYMBOL_PATTERN

    unknown = [s for s in args.strategy if s not in STRATEGIES and s not in PRESETS]
    if unknown:
        print(
            f"flipbot compare: unknown strategy {', '.join(unknown)}; choose from "
            f"{', '.join([*STRATEGIES, *sorted(PRESETS)])}",
            file=sys.stderr,
        )
        return 2
    if args.symbol and not re.fullmatch(SYMBOL_PATTERN, args.symbol):
        print(
            f"flipbot compare: --symbol {args.symbol!r} is not a symbol: 5 to 20 capital "
            "letters or digits, e.g. BTCUSDC",
            file=sys.stderr,
        )
        return 2
    missing = [d for d in args.data if d != BUNDLED and not Path(d).is_file()]
    if missing:
        print(f"flipbot compare: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        plain = _setup(None, args)
        setups = {s: _setup(s, args) for s in args.strategy}
    except ValueError as exc:
        print(f"flipbot compare: {exc}", file=sys.stderr)
        return 2
    template = checked_template(args.template, "compare")
    if template is None:
        return 2
    out_dir = Path(args.out)
    datasets = [Dataset(d, args.hours, args.seed, args.symbol) for d in args.data]
    jobs = [
        Job(
            d,
            setups[s].strategy,
            out_dir / d.slug / s,
            template,
            str(setups[s].balance),
            tuple(sorted(setups[s].parameters.items())),
            name=s,
        )
        for d in datasets
        for s in args.strategy
    ]
    print(
        f"flipbot compare: {len(args.strategy)} strategies x {len(datasets)} datasets, "
        f"{min(args.jobs, len(jobs))} at a time"
    )
    results = compare(jobs, args.jobs)
    rows = table_rows(results, [d.label for d in datasets])
    presets = [
        f"{name}: {PRESETS[name].summary}, balance {setups[name].balance}, "
        + ", ".join(f"{k}={v}" for k, v in sorted(setups[name].parameters.items()))
        for name in args.strategy
        if name in PRESETS
    ]
    note = (
        f"Initial balance {plain.balance}; template parameters "
        + ", ".join(f"{k}={v}" for k, v in sorted(plain.parameters.items()))
        + (" (presets: " + "; ".join(presets) + ")" if presets else "")
        + ". Net P&L after fees and AI cost (quote); return % on the whole balance, "
        "marked to the last price; fill time from placing an order to its last fill."
    )
    write_outputs(rows, out_dir, note)
    print()
    print(text_table(HEADERS, rows))
    print()
    print(note)
    print(
        f"table: {out_dir / 'compare.csv'}, {out_dir / 'compare.md'}; "
        f"each run in {out_dir}/<dataset>/<strategy>/"
    )
    ok = all(all(r["report"]["invariants"].values()) for r in results)
    return 0 if ok else 1


def write_outputs(rows: Sequence[Sequence[object]], out_dir: Path, note: str) -> None:
    """``compare.csv`` and ``compare.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.csv").write_text(csv_table(HEADERS, rows))
    (out_dir / "compare.md").write_text(markdown_table(HEADERS, rows) + "\n\n" + note + "\n")


def _balance(raw: str) -> str:
    """``--balance`` as given (the jobs carry it as text), once it is a positive number."""
    from flipbot_dev.commands.replay import quote_amount

    if quote_amount(raw) <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be positive")
    return raw
