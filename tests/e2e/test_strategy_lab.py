"""The strategy lab on the digital twin: every strategy on the bundled sample and the real
klines, the plots, the tables a run leaves behind and the commands that read them, and
``flipbot compare``."""

from __future__ import annotations

import csv
import io
import json
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.cli import main
from flipbot_dev.commands._books import BooksUnavailable, load_run, load_stack
from flipbot_dev.replay.data import MarketData, load_market_data
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.plots import PLOT_FILES, write_plots
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import TABLES, load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

STRATEGIES = ["ai", "offline", "fixed", "adaptive", "ma-cross"]
FAST = ["offline", "fixed", "adaptive", "ma-cross"]  # "ai" is "offline" without a key
KLINES = {
    "BTCUSDT": "BTCUSDT_1m_2020-01-01_2020-01-03_binance-vision.csv",
    "BTCBUSD": "BTCBUSD_1m_2022-12-13_lean.csv",
}
SHORT_HOURS = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _replay(data: MarketData, symbol: str, strategy: str, out_dir: Path | None) -> dict[str, Any]:
    config = ReplayConfig(
        template=TEMPLATE,
        data=data,
        symbol=symbol,
        out_dir=out_dir,
        decider=strategy,
        progress=False,
    )
    return run_replay(config, out=io.StringIO())


def _assert_invariants(report: dict[str, Any]) -> None:
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"


def _klines(reference_data: Path, symbol: str, hours: float | None = None) -> MarketData:
    data = load_market_data(reference_data / "klines" / KLINES[symbol], symbol=symbol)
    if hours:
        data = data.between(data.first_ms, data.first_ms + int(hours * 3_600_000))
    return data


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The fixed strategy on 4 hours of the bundled sample, written to a directory."""
    out = tmp_path_factory.mktemp("lab") / "run"
    report = _replay(generate_sample(seed=7, hours=4), "TRUMPUSDC", "fixed", out)
    return out, report


# ----------------------------------------------------------------------- every strategy


@pytest.mark.parametrize("strategy", FAST)
def test_given_each_strategy_when_replayed_on_the_bundled_sample_then_invariants_hold(
    strategy: str,
) -> None:
    report = _replay(generate_sample(seed=7, hours=SHORT_HOURS), "TRUMPUSDC", strategy, None)
    _assert_invariants(report)
    assert report["decided_by"] == strategy
    assert report["consultations"] >= 1
    assert {
        "fill_rate",
        "avg_fill_seconds",
        "net_pnl_per_trade_usdc",
        "ai_accuracy",
        "latency_seconds",
        "max_drawdown_pct",
        "time_in_position_pct",
        "buy_and_hold_return_pct",
    } <= set(report)


@pytest.mark.parametrize("symbol", sorted(KLINES))
@pytest.mark.parametrize("strategy", FAST)
def test_given_each_strategy_when_replayed_on_real_klines_then_invariants_hold(
    strategy: str, symbol: str, reference_data: Path
) -> None:
    data = _klines(reference_data, symbol, SHORT_HOURS)
    report = _replay(data, symbol, strategy, None)
    _assert_invariants(report)
    assert report["market_events"] == len(data)


def test_given_ma_cross_when_replayed_twice_then_its_reports_are_byte_identical(
    tmp_path: Path,
) -> None:
    data = generate_sample(seed=7, hours=SHORT_HOURS)
    _replay(data, "TRUMPUSDC", "ma-cross", tmp_path / "a")
    _replay(data, "TRUMPUSDC", "ma-cross", tmp_path / "b")
    for name in ("report.json", "trades.csv", *(f"tables/{t}.json" for t in TABLES)):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# ----------------------------------------------------------------------- plots


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_given_a_replay_with_an_output_directory_then_the_plots_are_valid_pngs(
    fixed_run: tuple[Path, dict[str, Any]],
) -> None:
    out, report = fixed_run
    assert report["fills"] >= 4
    for name in PLOT_FILES:
        path = out / name
        assert path.is_file(), name
        width, height = _png_size(path)
        assert width >= 400
        assert height >= 200
        assert 10_000 < path.stat().st_size < 150_000, (name, path.stat().st_size)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(out / "price.png"))
    assert pixels.shape[0] > 200
    assert pixels.std() > 0.01  # not a blank canvas


def test_given_the_fills_of_a_replay_then_the_price_plot_has_one_marker_per_fill(
    fixed_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, report = fixed_run
    fills = report["fill_log"]
    trades = list(csv.DictReader((fixed_run[0] / "trades.csv").open()))
    prices = [(int(f["time_ms"]), __import__("decimal").Decimal(f["price"])) for f in fills]
    summary = write_plots(report, trades, fills, prices, tmp_path)
    assert summary.markers == report["fills"] == len(fills)
    assert summary.buy_markers == sum(1 for f in fills if f["side"] == "BUY")
    assert summary.sell_markers == sum(1 for f in fills if f["side"] == "SELL")
    assert summary.open_order_lines == len(report["open_orders"])
    assert [p.name for p in summary.files] == list(PLOT_FILES)


def test_given_no_fills_then_the_plots_still_render(tmp_path: Path) -> None:
    report = {
        "symbol": "TESTUSDC",
        "decided_by": "offline",
        "net_pnl_usdc": "0",
        "initial_balances": {"USDC": "100"},
        "base_asset": "TEST",
        "quote_asset": "USDC",
        "open_orders": [],
        "order_fill_seconds": {},
    }
    from decimal import Decimal

    summary = write_plots(report, [], [], [(0, Decimal(1)), (60_000, Decimal(2))], tmp_path)
    assert summary.markers == 0
    for name in PLOT_FILES:
        _png_size(tmp_path / name)


# ----------------------------------------------------------------------- tables + commands


def test_given_a_replay_then_its_tables_are_left_behind_and_match_the_report(
    fixed_run: tuple[Path, dict[str, Any]],
) -> None:
    out, report = fixed_run
    books = load_tables(out / "tables")
    assert len(books.trades) == report["cycles_completed"]
    assert len(books.fills) == report["fills"]
    assert len(books.consultations) == report["consultations"]
    assert sum(1 for o in books.orders if o.order_id) == report["orders_placed"]


def test_given_a_run_directory_then_status_history_and_pnl_read_its_tables(
    fixed_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = fixed_run
    assert main(["status", "--run", str(out)]) == 0
    status = capsys.readouterr().out
    assert f"{report['cycles_completed']} completed" in status
    assert "last decision" in status

    assert main(["history", "--run", str(out)]) == 0
    history = capsys.readouterr().out
    assert history.count("c0000") == report["cycles_completed"]

    assert main(["history", "--run", str(out), "--csv", "--limit", "0"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 + report["cycles_completed"]

    assert main(["pnl", "--run", str(out)]) == 0
    text = capsys.readouterr().out
    assert "latency per stage" in text
    assert "AI accuracy" in text

    assert main(["pnl", "--run", str(out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["net_pnl"] == report["net_pnl_usdc"]
    assert figures["fill_rate"] == report["fill_rate"]
    assert figures["ai_accuracy"] == report["ai_accuracy"]
    assert figures["latency_seconds"] == report["latency_seconds"]


def test_given_a_directory_without_tables_then_the_commands_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("status", "history", "pnl"):
        assert main([command, "--run", str(tmp_path)]) == 2
        assert "flipbot replay --out" in capsys.readouterr().err
    with pytest.raises(BooksUnavailable):
        load_run(tmp_path)


class _FakeCloudFormation:
    class meta:
        region_name = "eu-west-1"

    def __init__(
        self, outputs: dict[str, str], symbols: str = "", symbol: str = "TRUMPUSDC"
    ) -> None:
        self.outputs = outputs
        self.parameters = {"Symbol": symbol, "Symbols": symbols}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {
            "Stacks": [
                {
                    "Outputs": [
                        {"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()
                    ],
                    "Parameters": [
                        {"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()
                    ],
                }
            ]
        }


def test_given_a_stack_then_its_outputs_name_the_tables_that_are_read(
    fixed_run: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = fixed_run
    dumped = load_tables(out / "tables")
    outputs = {
        f"{name.capitalize()}TableName": f"stack-{name}"
        for name in ("cycles", "orders", "fills", "trades", "consultations", "market")
    }
    seen: dict[str, Any] = {}

    class Repos:
        def __init__(self) -> None:
            self.cycles = type("C", (), {"all": staticmethod(lambda: list(dumped.cycles))})
            self.orders = type("O", (), {"all": staticmethod(lambda: list(dumped.orders))})
            self.fills = type("F", (), {"all": staticmethod(lambda: list(dumped.fills))})
            self.trades = type(
                "T",
                (),
                {
                    "all": staticmethod(
                        lambda symbol: (
                            seen.setdefault("symbols", []).append(symbol)
                            or [t for t in dumped.trades if t.symbol == symbol]
                        )
                    )
                },
            )
            self.consultations = type(
                "K", (), {"all": staticmethod(lambda: list(dumped.consultations))}
            )

    def repositories(tables: Any, region: str | None = None) -> Repos:
        seen["tables"], seen["region"] = tables, region
        return Repos()

    source = load_stack(
        "flipbot-prod", cloudformation=_FakeCloudFormation(outputs), repositories=repositories
    )
    assert seen["tables"].cycles == "stack-cycles"
    assert seen["tables"].consultations == "stack-consultations"
    assert seen["region"] == "eu-west-1"
    assert seen["symbols"] == ["TRUMPUSDC"]
    assert source.symbol == "TRUMPUSDC"
    assert source.label == "stack flipbot-prod"
    assert len(source.books.trades) == len(dumped.trades) > 0

    # a stack of several symbols: each symbol's trades are read, and one symbol's kept
    def stack(**parameters: str) -> Any:
        seen.clear()
        fake = _FakeCloudFormation(outputs, **parameters)
        return load_stack("flipbot-prod", cloudformation=fake, repositories=repositories)

    several = stack(symbols="ETHUSDC,TRUMPUSDC")
    assert seen["symbols"] == ["TRUMPUSDC", "ETHUSDC"]
    assert (several.symbol, several.symbols) == ("TRUMPUSDC,ETHUSDC", ("TRUMPUSDC", "ETHUSDC"))
    assert len(several.only("TRUMPUSDC").books.trades) == len(dumped.trades)
    eth = several.only("ETHUSDC")
    assert (eth.symbol, len(eth.books.cycles), len(eth.books.trades)) == ("ETHUSDC", 0, 0)
    with pytest.raises(BooksUnavailable, match="--symbol SOLUSDC: not a symbol of stack"):
        several.only("SOLUSDC")
    # a symbol the stack no longer lists: its cycles are in the tables, its trades too
    moved = stack(symbol="ETHUSDC")
    assert seen["symbols"] == ["ETHUSDC", "TRUMPUSDC"]
    assert moved.symbols == ("ETHUSDC", "TRUMPUSDC")
    assert len(moved.only("TRUMPUSDC").books.trades) == len(dumped.trades)

    del outputs["FillsTableName"]
    with pytest.raises(BooksUnavailable, match="FillsTableName"):
        load_stack(
            "flipbot-prod", cloudformation=_FakeCloudFormation(outputs), repositories=repositories
        )


# ----------------------------------------------------------------------- compare


def _check_compare(out: Path, stdout: str, datasets: int, strategies: list[str]) -> list[dict]:
    assert "buy-and-hold" in stdout
    for strategy in strategies:
        assert strategy in stdout
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert len(rows) == datasets * (len(strategies) + 1)
    markdown = (out / "compare.md").read_text()
    assert markdown.startswith("| dataset | strategy | cycles | net P&L |")
    assert markdown.count("\n| ") == len(rows)  # one line per row after the header
    for row in rows:
        if row["strategy"] != "buy-and-hold":
            assert row["invariants"] == "OK", row
            assert (out / _slug(row["dataset"]) / row["strategy"] / "report.json").is_file()
    return rows


def _slug(label: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")


def test_given_short_slices_when_compared_then_the_table_is_printed_and_written(
    tmp_path: Path, reference_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    btcbusd = str(reference_data / "klines" / KLINES["BTCBUSD"])
    code = main(
        [
            "compare",
            "--data",
            "bundled",
            btcbusd,
            "--strategy",
            "fixed",
            "ma-cross",
            "ma-cross-poc",
            "--hours",
            "2",
            "--jobs",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    rows = _check_compare(tmp_path, stdout, 2, ["fixed", "ma-cross", "ma-cross-poc"])
    assert {r["dataset"] for r in rows} == {"bundled seed 7, 2h", "BTCBUSD_1m_2022-12-13_lean, 2h"}
    # the preset's row ran ma-cross on its own capital; the others on the command line's
    poc = json.loads((tmp_path / "bundled_seed_7_2h" / "ma-cross-poc" / "report.json").read_text())
    plain = json.loads((tmp_path / "bundled_seed_7_2h" / "ma-cross" / "report.json").read_text())
    assert (poc["decided_by"], poc["initial_equity_usdc"]) == ("ma-cross", "500.00000000")
    assert plain["initial_equity_usdc"] == "100.00000000"
    assert "ma-cross-poc: MA(9/21) on 5 m candles" in (tmp_path / "compare.md").read_text()
    assert "cycles" in rows[0]
    assert "max drawdown %" in rows[0]


def test_given_an_unknown_strategy_or_file_then_compare_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--strategy", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown strategy nope" in capsys.readouterr().err
    assert main(["compare", "--data", str(tmp_path / "x.csv"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_given_a_symbol_then_compare_replays_that_pair_s_bundled_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", "--strategy", "fixed", "--hours", "1", "--jobs", "1"]
    code = main([*args, "--symbol", "btcusdc", "--out", str(tmp_path)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    rows = _check_compare(tmp_path, stdout, 1, ["fixed"])
    assert {r["dataset"] for r in rows} == {"bundled BTCUSDC seed 7, 1h"}
    run = tmp_path / "bundled_BTCUSDC_seed_7_1h" / "fixed"
    report = json.loads((run / "report.json").read_text())
    # the pair's own market: BTC's price, not the TRUMP-like sample renamed
    assert report["symbol"] == "BTCUSDC"
    assert Decimal(report["last_price"]) > 10_000
    assert main([*args, "--symbol", "BTC-USDC", "--out", str(tmp_path)]) == 2
    assert "--symbol 'BTC-USDC' is not a symbol" in capsys.readouterr().err


@pytest.mark.slow
def test_given_the_bundled_sample_and_both_real_kline_files_when_compared_then_all_rows_hold(
    tmp_path: Path, reference_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(reference_data / "klines" / name) for name in KLINES.values()]
    code = main(
        [
            "compare",
            "--data",
            "bundled",
            *files,
            "--strategy",
            *STRATEGIES,
            "ma-cross-poc",
            "--jobs",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    # every strategy completed every dataset with its invariants (checked per row)
    rows = _check_compare(tmp_path, stdout, 3, [*STRATEGIES, "ma-cross-poc"])
    for row in rows:
        if "bundled" in row["dataset"] and row["strategy"] != "buy-and-hold":
            assert int(row["cycles"]) >= 1, row
