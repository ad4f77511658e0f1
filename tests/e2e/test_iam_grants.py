"""Least privilege, checked: across the replays that exercise every path, no call is
denied and every grant of the template is used or kept with a reason.

Each replay already holds ``iam_every_call_allowed`` (CI's replays and chaos runs assert
every invariant). This soak run combines many of them - each strategy, every chaos
scenario with a tight stop-loss, a recovery from wiped tables, a position withdrawn by
hand (the state machine's Catch into Reconcile), the AI path against the
local OpenAI-compatible fake - and asks the other half of the question: which grants did
nothing use? Every such grant must be listed, with its reason, in
``flipbot_dev.twin.iam.UNUSED_GRANTS``; anything else is a grant to remove.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.commands.iam import render
from flipbot_dev.fake_openai import FakeOpenAiServer, absurd, alternate, valid
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.chaos import SCENARIOS
from flipbot_dev.twin.runner import ReplayConfig, run_replay

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

pytestmark = pytest.mark.slow
KEY = "sk-grants-0123456789"


def _replay(hours: float = 24, seed: int = 7, **options: Any) -> dict[str, Any]:
    config = ReplayConfig(
        template=TEMPLATE,
        data=generate_sample(seed=seed, hours=hours),
        symbol="TRUMPUSDC",
        progress=False,
        **options,
    )
    return run_replay(config, out=io.StringIO())


def test_every_grant_is_used_or_kept_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    reports = [
        _replay(),
        _replay(decider="ma-cross"),
        _replay(decider="adaptive"),
        _replay(hours=8, interventions=((180, "wipe_and_recover"),)),
        # base withdrawn by hand while a cycle sells: the sell leg's error is caught into
        # Reconcile by the state machine (the chaos replays no longer reach that path)
        _replay(hours=8, interventions=((100, "withdraw_base"),)),
    ]
    for seed in (1, 2):
        reports += [
            _replay(
                hours=6,
                seed=seed,
                chaos=scenario,
                chaos_seed=seed,
                parameters={"StopLoss": "0.003"},
            )
            for scenario in SCENARIOS
        ]
    with FakeOpenAiServer(alternate(valid(), absurd()), api_key=KEY, lifetime=300) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        reports.append(_replay(hours=3, decider="openai"))
    text, denied, unused = render(reports)
    assert denied == 0, text
    assert unused == 0, text
