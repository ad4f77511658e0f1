"""One replay of the bundled sample through the twin with the real OpenAI client, for the
tests whose local OpenAI-compatible endpoints stand in for the models."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import Books, load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def replay_with_ai(
    out_dir: Path,
    env: Mapping[str, str],
    *,
    hours: float,
    max_cycles: int,
    parameters: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], Books]:
    """Replay ``hours`` of the seed-7 sample with the ``openai`` decider under ``env``
    (``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` or ``AI_MODELS``, ...; ``AI_MODEL`` and
    ``AI_MODELS`` are unset unless given); the report and the tables it wrote."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AI_MODEL", "AI_MODELS"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        config = ReplayConfig(
            template=TEMPLATE,
            data=generate_sample(seed=7, hours=hours),
            symbol="TRUMPUSDC",
            decider="openai",
            max_cycles=max_cycles,
            progress=False,
            out_dir=out_dir,
            parameters=dict(parameters or {}),
        )
        report = run_replay(config, out=io.StringIO())
    return report, load_tables(out_dir / "tables")
