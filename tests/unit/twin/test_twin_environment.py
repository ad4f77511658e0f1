"""The twin applies each function's environment to ``os.environ`` without ever deleting a
variable while moto's threads may be copying the environment."""

from __future__ import annotations

import os
import threading
from typing import Any

from flipbot_dev.twin.moto_hooks import LambdaRegistry

KEY = "FLIPBOT_TWIN_ENV_PROBE"


def _copy_environ_until(stop: threading.Event, errors: list[BaseException]) -> None:
    while not stop.is_set():
        try:
            dict(os.environ)  # what botocore does when a client is created
        except KeyError as exc:
            errors.append(exc)


def test_given_concurrent_environment_copies_when_functions_run_then_no_key_vanishes() -> None:
    registry = LambdaRegistry()
    seen: list[str | None] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        seen.append(os.environ.get(KEY))

    registry.register("fn", handler, {KEY: "on"})
    stop, errors = threading.Event(), []
    copier = threading.Thread(target=_copy_environ_until, args=(stop, errors))
    copier.start()
    try:
        for _ in range(20_000):
            registry.invoke("fn", {})
    finally:
        stop.set()
        copier.join()
    assert errors == []
    assert seen == ["on"] * 20_000
    # The variable stays for the run; restoring the environment removes it.
    assert os.environ.get(KEY) == "on"
    registry.restore_environment()
    assert KEY not in os.environ


def test_given_a_variable_set_before_the_run_then_its_value_is_put_back_after_each_call() -> None:
    registry = LambdaRegistry()
    registry.register("fn", lambda event, context: os.environ[KEY], {KEY: "function"})
    os.environ[KEY] = "user"
    try:
        assert registry.invoke("fn", {}) == "function"
        assert os.environ[KEY] == "user"
        registry.restore_environment()
        assert os.environ[KEY] == "user"
    finally:
        os.environ.pop(KEY, None)
