"""Several symbols on one stack, end to end: the twin replays one correlated market per
symbol through the template's functions and state machine, each symbol's cycle chain
trading on its own, and the report holds every symbol's figures and invariants and the
stack's totals."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.cli import main
from flipbot_dev.replay.sample import generate_markets, write_csv
from flipbot_dev.twin.runner import ReplayConfig, run_replay

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
SYMBOLS = ("TRUMPUSDC", "BTCUSDC", "ETHUSDC")


def _replay(out: Path | None, hours: float, seed: int = 7, **overrides: Any) -> dict[str, Any]:
    home, *others = generate_markets(SYMBOLS, seed=seed, hours=hours).values()
    config = ReplayConfig(
        template=TEMPLATE,
        data=home,
        others=tuple(others),
        symbol=home.symbol,
        quote_balance=Decimal(300),
        out_dir=out,
        progress=False,
        **overrides,
    )
    return run_replay(config, out=io.StringIO())


def _failed(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report["violations"] for k, ok in report["invariants"].items() if not ok}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("many")
    return out, _replay(out, hours=24)


def test_every_symbol_completes_cycles_with_every_invariant_true(
    day: tuple[Path, dict[str, Any]],
) -> None:
    _, report = day
    assert report["symbol"] == "TRUMPUSDC,BTCUSDC,ETHUSDC"
    assert set(report["symbols"]) == set(SYMBOLS)
    assert not _failed(report)
    for symbol, own in report["symbols"].items():
        assert own["symbol"] == symbol
        assert own["cycles_completed"] >= 1, symbol
        assert not _failed(own), symbol
        # each symbol's figures are those a one-symbol report has, its chain's invariants too
        assert {"realized_pnl_usdc", "fill_rate", "equity_usdc", "by_decider"} <= set(own)
        assert {"ledger_matches_exchange", "one_cycle_at_a_time", "no_silent_halt"} <= set(
            own["invariants"]
        )
    # the totals are the symbols' sums
    assert report["cycles_completed"] == sum(
        own["cycles_completed"] for own in report["symbols"].values()
    )
    assert Decimal(report["realized_pnl_usdc"]) == sum(
        Decimal(own["realized_pnl_usdc"]) for own in report["symbols"].values()
    )
    assert report["invariants"]["iam_every_call_allowed"]


def test_each_chain_names_its_cycles_and_orders_after_its_symbol(
    day: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = day
    with (out / "trades.csv").open() as handle:
        cycles = [row["cycle_id"] for row in csv.DictReader(handle)]
    chains = Counter(c.rpartition("_")[0] or "TRUMPUSDC" for c in cycles)
    assert set(chains) == set(SYMBOLS)
    assert all(c.startswith(("c", "BTCUSDC_c", "ETHUSDC_c")) for c in cycles)
    dumped = json.loads((out / "tables" / "orders.json").read_text())
    for order in dumped:
        part = order["cycle_id"].rpartition("_")[0] or "TRUMPUSDC"
        assert order["symbol"] == part, order["client_order_id"]
    for symbol in SYMBOLS:  # each symbol's plots, in its own folder
        assert (out / symbol / "equity.png").stat().st_size > 0


def test_status_history_and_pnl_read_one_symbol_or_all(
    day: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = day

    def pnl(*extra: str) -> dict[str, Any]:
        assert main(["pnl", "--run", str(out), "--json", *extra]) == 0
        figures: dict[str, Any] = json.loads(capsys.readouterr().out)
        return figures

    # every symbol's closed cycles are in the books, the totals are the report's
    total = pnl()
    assert total["cycles_completed"] == report["cycles_completed"]
    assert Decimal(total["realized_pnl"]) == Decimal(report["realized_pnl_usdc"])
    for symbol, own in report["symbols"].items():
        figures = pnl("--symbol", symbol.lower())
        assert figures["cycles_completed"] == own["cycles_completed"], symbol
        assert Decimal(figures["realized_pnl"]) == Decimal(own["realized_pnl_usdc"]), symbol
        assert (
            main(["history", "--run", str(out), "--symbol", symbol, "--csv", "--limit", "0"]) == 0
        )
        closed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert len(closed) == own["cycles_completed"], symbol
        assert all((c["cycle"].rpartition("_")[0] or "TRUMPUSDC") == symbol for c in closed)
        assert main(["status", "--run", str(out), "--symbol", symbol]) == 0
        status = capsys.readouterr().out
        assert status.startswith(f"{symbol} (run ")
        assert f"{own['cycles_completed']} completed" in status
    assert main(["status", "--run", str(out)]) == 0
    assert capsys.readouterr().out.startswith("TRUMPUSDC,BTCUSDC,ETHUSDC (run ")
    # a symbol the run did not trade is refused, naming the ones it did
    assert main(["pnl", "--run", str(out), "--symbol", "SOLUSDC"]) == 2
    err = capsys.readouterr().err
    assert "--symbol SOLUSDC: not a symbol of run" in err
    assert "TRUMPUSDC, BTCUSDC, ETHUSDC" in err


def test_chaos_with_three_symbols_breaks_no_invariant() -> None:
    report = _replay(None, hours=6, seed=1, chaos="combined", chaos_seed=1)
    assert report["chaos"]["crashes"] + report["chaos"]["faults"] > 0
    assert not _failed(report)
    for symbol, own in report["symbols"].items():
        assert not _failed(own), symbol
        assert own["invariants"]["orders_only_on_symbol"], symbol


def test_seed_003_s_pair_replays_from_one_file_each(tmp_path: Path) -> None:
    btc, eth = generate_markets(("BTCUSDT", "ETHUSDT"), seed=3, hours=6).values()
    files = [write_csv(btc, tmp_path / "btc.csv"), write_csv(eth, tmp_path / "eth.csv")]
    out = tmp_path / "out"
    code = main(
        [
            "replay",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--data",
            *map(str, files),
            "--strategy",
            "ma-cross",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert code == 0, _failed(report)
    assert set(report["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    assert report["decided_by"] == "ma-cross"
    assert Decimal(report["initial_balances"]["USDT"]) == 200  # 100 a symbol


def test_a_file_count_that_does_not_match_the_symbols_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (btc,) = generate_markets(("BTCUSDT",), hours=1).values()
    file = write_csv(btc, tmp_path / "btc.csv")
    code = main(["replay", "--symbols", "BTCUSDT,ETHUSDT", "--data", str(file), "--quiet"])
    assert code == 2
    assert "--symbols names 2 symbol(s), --data gives 1 file(s)" in capsys.readouterr().err
