"""Shared fixtures: where the project and the reference data live."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """``../shared/data`` beside the repository (real Binance data); skipped when absent."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DATA}")
    return REFERENCE_DATA


@pytest.fixture
def flipbot_logs_reach_caplog() -> Iterator[None]:
    """A Powertools ``Logger`` named ``flipbot`` (built by handler tests earlier in the
    session) has its own level and stops propagation; let records reach pytest again."""
    logger = logging.getLogger("flipbot")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    yield
    logger.setLevel(level)
    logger.propagate = propagate
