"""``flipbot replay --exchange loopback``: the twin over real HTTP gives the in-process report."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.cli import main
from flipbot_dev.paper.server import ClientLink
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Requests served by each loopback server a replay started, recorded as it closes."""
    counts: list[int] = []
    close = ClientLink.close

    def counting_close(self: ClientLink) -> None:
        if self.server is not None:
            counts.append(self.server.requests)
        close(self)

    monkeypatch.setattr(ClientLink, "close", counting_close)
    return counts


@pytest.mark.slow  # two 6-hour replays: 10-15 s on an idle machine
def test_loopback_and_in_process_replays_write_identical_reports(
    tmp_path: Path, served: list[int]
) -> None:
    data = generate_sample(seed=7, hours=6)
    reports: dict[str, dict[str, Any]] = {}
    for transport in ("inprocess", "loopback"):
        config = ReplayConfig(
            template=TEMPLATE,
            data=data,
            symbol="TRUMPUSDC",
            out_dir=tmp_path / transport,
            progress=False,
            exchange=transport,
        )
        reports[transport] = run_replay(config, out=io.StringIO())

    assert reports["loopback"]["orders_placed"] >= 2
    for name in ("report.json", "trades.csv"):
        assert (tmp_path / "loopback" / name).read_bytes() == (
            tmp_path / "inprocess" / name
        ).read_bytes(), name
    assert len(served) == 1
    assert served[0] > 10  # the loopback run really went over HTTP
    assert not [t for t in threading.enumerate() if t.name.startswith("paper-http")]


def test_the_replay_command_trades_over_loopback(tmp_path: Path, served: list[int]) -> None:
    out = tmp_path / "replay"
    argv = ["replay", "--exchange", "loopback", "--hours", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0  # every invariant holds
    report = json.loads((out / "report.json").read_text())
    assert report["orders_placed"] >= 1
    assert len(served) == 1
    assert served[0] > 5


def test_an_unknown_exchange_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="choose inprocess or loopback"):
        ClientLink("carrier-pigeon")
