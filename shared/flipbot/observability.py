"""Structured logs that cannot carry a secret.

Every function logs through a Powertools ``Logger`` whose formatter is
:class:`ScrubbingFormatter`; records of the ``flipbot.*`` library loggers propagate to
the same handler. Before a line is written the formatter

* replaces the value of every key that names a credential (``api_key``, ``api_secret``,
  ``password``, ``authorization``, ``signature``, ``*_token`` such as a task token...),
  at any depth of the structured record, with ``***``;
* replaces every occurrence of a known secret value anywhere in the line (message,
  extra keys, exception text, stack trace), also in its JSON-escaped form.

Secret values become known when :func:`flipbot.adapters.aws.read_secret` reads them from
Secrets Manager, and at start-up from environment variables that hold one
(``BINANCE_API_KEY``, ``BINANCE_API_SECRET``, ... as ECS injects them into the
listener); register others with :func:`register_secret`.

Usage in a handler::

    from aws_lambda_powertools import Logger
    from flipbot.observability import ScrubbingFormatter

    logger = Logger(logger_formatter=ScrubbingFormatter())
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED = "***"
#: Shorter values are not treated as secrets (placeholders such as ``FILL_ME``).
MIN_SECRET_LENGTH = 8

_SECRET_KEY = re.compile(
    r"(api[_-]?key|api[_-]?secret|secret[_-]?key|secret[_-]?string|client[_-]?secret|"
    r"password|passphrase|authorization|signature|credentials?|private[_-]?key|"
    r"x-mbx-apikey|(^|[_-])token)$",
    re.IGNORECASE,
)
# Environment variables whose value is itself a secret (not the ARN or name of one).
_SECRET_ENV = re.compile(r"(API_KEY|API_SECRET|SECRET_KEY|PASSWORD|PASSPHRASE|_TOKEN)$")


class _Registry:
    """The secret values this process knows, and one pattern matching any of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, fresh: set[str]) -> None:
        with self.lock:
            if fresh <= self.values:
                return
            self.values |= fresh
            forms = {form for value in self.values for form in (value, json.dumps(value)[1:-1])}
            # longest first, so a secret that contains another is replaced whole
            ordered = sorted(forms, key=len, reverse=True)
            self.pattern = re.compile("|".join(re.escape(form) for form in ordered))

    def clear(self) -> None:
        with self.lock:
            self.values.clear()
            self.pattern = None


_registry = _Registry()


def is_secret_key(key: str) -> bool:
    """True for a key that names a credential (``api_key``, ``task_token``, ...)."""
    return bool(_SECRET_KEY.search(key))


def register_secret(*values: Any) -> None:
    """Remember secret values so that no log line can show them."""
    _registry.add({v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH})


def register_secrets_from_env(env: Mapping[str, str] | None = None) -> None:
    """Register the values of environment variables that hold a secret."""
    env = os.environ if env is None else env
    register_secret(*(value for name, value in env.items() if _SECRET_ENV.search(name.upper())))


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    _registry.clear()


def scrub_text(text: str) -> str:
    """``text`` with every registered secret value replaced by ``***``."""
    pattern = _registry.pattern
    return text if pattern is None else pattern.sub(REDACTED, text)


def scrub(value: Any) -> Any:
    """A copy of a structured value with credential keys and secret values redacted."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) and item else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


class ScrubbingFormatter(LambdaPowertoolsFormatter):
    """The Powertools JSON formatter with :func:`scrub` applied to every record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        register_secrets_from_env()

    def serialize(self, log: Any) -> str:
        return scrub_text(super().serialize(scrub(log)))


def secret_values() -> Iterable[str]:
    """The registered values (for tests that assert none of them was logged)."""
    with _registry.lock:
        return sorted(_registry.values)
