"""Pictures of a replay, written beside ``report.json`` as PNG files.

* ``equity.png`` — equity in quote over time (balances moved by every fill, the base
  asset at the latest price), with the buy-and-hold line for reference;
* ``price.png`` — the price, one marker per fill (▲ buy, ▼ sell) and the orders still
  open at the end as dashed lines from the time they were placed;
* ``fill_times.png`` — histogram of the time from placing an order to its last fill,
  buys and sells.

matplotlib is imported lazily and drawn off-screen (Agg, no pyplot state); without it
:func:`write_plots` writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flipbot.domain.model import Side
from flipbot_dev.metrics import equity_path

PLOT_FILES = ("equity.png", "price.png", "fill_times.png")
_SIZE = (9.0, 4.2)
_DPI = 90
_METADATA = {"Software": None}  # no version stamp: same replay, same bytes
BUY_LABEL, SELL_LABEL = "buy fills", "sell fills"


@dataclass
class PlotSummary:
    """What :func:`write_plots` drew: the files, and the fill markers on ``price.png``
    (counted from the drawn artists)."""

    files: list[Path] = field(default_factory=list)
    buy_markers: int = 0
    sell_markers: int = 0
    open_order_lines: int = 0

    @property
    def markers(self) -> int:
        return self.buy_markers + self.sell_markers


@dataclass(frozen=True)
class _Fill:
    time_ms: int
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str


def _fills(rows: Sequence[Mapping[str, Any]]) -> list[_Fill]:
    return [
        _Fill(
            int(r["time_ms"]),
            Side(r["side"]),
            Decimal(r["price"]),
            Decimal(r["qty"]),
            Decimal(r["quote_qty"]),
            Decimal(r["commission"]),
            str(r["commission_asset"]),
        )
        for r in rows
    ]


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def _axes(title: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, dpi=_DPI)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("time (UTC)")


def _save(fig: Any, path: Path, summary: PlotSummary) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_METADATA)
    summary.files.append(path)


def write_plots(
    report: Mapping[str, Any],
    trades: Sequence[Mapping[str, Any]],
    fills: Sequence[Mapping[str, Any]],
    price_path: Sequence[tuple[int, Decimal]],
    out_dir: Path,
) -> PlotSummary:
    """Write :data:`PLOT_FILES` into ``out_dir``; see the module docstring.

    ``fills`` are the report's ``fill_log`` rows, ``trades`` the closed cycles (they give
    each cycle's buy and sell fill time when the report has no per-order figures).
    """
    summary = PlotSummary()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return summary
    out_dir.mkdir(parents=True, exist_ok=True)
    title = (
        f"{report.get('symbol', '')}, {report.get('decided_by', '')}: "
        f"net P&L {Decimal(str(report.get('net_pnl_usdc', '0'))):+.4f}"
    )
    logged = _fills(fills)
    _equity(report, logged, price_path, out_dir=out_dir, title=title, summary=summary)
    _price(report, logged, price_path, out_dir=out_dir, title=title, summary=summary)
    _fill_times(report, trades, out_dir, title, summary)
    return summary


def _equity(
    report: Mapping[str, Any],
    fills: list[_Fill],
    prices: Sequence[tuple[int, Decimal]],
    *,
    out_dir: Path,
    title: str,
    summary: PlotSummary,
) -> None:
    fig, ax = _axes(f"equity: {title}")
    initial = {k: Decimal(v) for k, v in report.get("initial_balances", {}).items()}
    base, quote = str(report.get("base_asset", "")), str(report.get("quote_asset", ""))
    path = equity_path(initial, fills, prices, base, quote)
    if path:
        ax.plot(
            [_when(t) for t, _ in path],
            [v for _, v in path],
            color="tab:blue",
            linewidth=1.2,
            label="equity",
        )
        start = path[0][1]
        if prices and prices[0][1] > 0:
            first = float(prices[0][1])
            ax.plot(
                [_when(t) for t, _ in prices],
                [start * float(p) / first for _, p in prices],
                color="tab:gray",
                linewidth=0.8,
                alpha=0.6,
                label="buy and hold (all capital)",
            )
        ax.legend(loc="upper left", fontsize=8)
        _time_axis(ax)
    ax.set_ylabel(quote or "quote")
    _save(fig, out_dir / "equity.png", summary)


def _price(
    report: Mapping[str, Any],
    fills: list[_Fill],
    prices: Sequence[tuple[int, Decimal]],
    *,
    out_dir: Path,
    title: str,
    summary: PlotSummary,
) -> None:
    fig, ax = _axes(f"price and fills: {title}")
    if prices:
        ax.plot(
            [_when(t) for t, _ in prices],
            [float(p) for _, p in prices],
            color="tab:gray",
            linewidth=0.9,
            label="price",
        )
    for side, label, marker, color in (
        (Side.BUY, BUY_LABEL, "^", "tab:green"),
        (Side.SELL, SELL_LABEL, "v", "tab:red"),
    ):
        chosen = [f for f in fills if f.side is side]
        if chosen:
            ax.scatter(
                [_when(f.time_ms) for f in chosen],
                [float(f.price) for f in chosen],
                marker=marker,
                color=color,
                s=36,
                zorder=3,
                label=f"{label} ({len(chosen)})",
                edgecolors="black",
                linewidths=0.4,
            )
    end_ms = prices[-1][0] if prices else 0
    placed = report.get("open_orders_placed_ms", {})
    lines = 0
    for order in report.get("open_orders", []):
        start_ms = int(placed.get(order["client_order_id"], end_ms))
        color = "tab:green" if order["side"] == "BUY" else "tab:red"
        ax.hlines(
            float(order["price"]),
            _when(start_ms),
            _when(max(end_ms, start_ms)),
            colors=color,
            linestyles="dashed",
            linewidth=1.0,
            label=f"open {order['side'].lower()} {order['price']}",
        )
        lines += 1
    if prices or fills:
        ax.legend(loc="best", fontsize=8)
        _time_axis(ax)
    ax.set_ylabel("price")
    for collection in ax.collections:
        label = str(collection.get_label())
        if label.startswith(BUY_LABEL):
            summary.buy_markers += len(collection.get_offsets())
        elif label.startswith(SELL_LABEL):
            summary.sell_markers += len(collection.get_offsets())
    summary.open_order_lines = lines
    _save(fig, out_dir / "price.png", summary)


def _fill_times(
    report: Mapping[str, Any],
    trades: Sequence[Mapping[str, Any]],
    out_dir: Path,
    title: str,
    summary: PlotSummary,
) -> None:
    fig, ax = _axes(f"time to fill: {title}")
    per_order = report.get("order_fill_seconds")
    if per_order is not None:
        buys = [float(v) / 60 for k, v in per_order.items() if "-B" in k]
        sells = [float(v) / 60 for k, v in per_order.items() if "-S" in k]
    else:
        buys = [float(t["buy_fill_seconds"]) / 60 for t in trades]
        sells = [float(t["sell_fill_seconds"]) / 60 for t in trades]
    data = [(buys, "buy orders", "tab:green"), (sells, "sell orders", "tab:red")]
    present = [(values, label, color) for values, label, color in data if values]
    if present:
        ax.hist(
            [v for v, _, _ in present],
            bins=20,
            color=[c for _, _, c in present],
            label=[f"{label} ({len(v)})" for v, label, _ in present],
            alpha=0.8,
        )
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no filled orders", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("minutes from placing an order to its last fill")
    ax.set_ylabel("orders")
    _save(fig, out_dir / "fill_times.png", summary)
