"""DynamoDB items the deployed code reads, counted by virtual day.

DynamoDB bills reads by the items a request reads (a Query or Scan by the items it
evaluates, whatever the filter keeps), so a code path that reads more each day the stack
lives shows here before it shows on the bill or passes a function's timeout. The meter
is told of every answered call a principal makes (``Authorizer.observer``) and counts:
``GetItem`` 1 when found, ``Query``/``Scan`` their ``ScannedCount``, ``BatchGetItem`` and
``TransactGetItems`` the items returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 86_400_000
READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


def items_read(operation: str, response: Any) -> int:
    """The items one DynamoDB response read (0 for a write)."""
    if not isinstance(response, dict):
        return 0
    if operation == "GetItem":
        return 1 if "Item" in response else 0
    if operation in ("Query", "Scan"):
        return int(response.get("ScannedCount") or response.get("Count") or 0)
    if operation == "BatchGetItem":
        return sum(len(items) for items in (response.get("Responses") or {}).values())
    if operation == "TransactGetItems":
        return sum(1 for r in response.get("Responses") or [] if "Item" in r)
    return 0


@dataclass
class ReadMeter:
    """Items read per virtual day (from the first event), per principal."""

    now_ms: Callable[[], int]
    start_ms: int
    by_day: dict[int, int] = field(default_factory=dict)
    by_principal: dict[str, int] = field(default_factory=dict)
    by_principal_day: dict[tuple[str, int], int] = field(default_factory=dict)
    #: read requests (GetItem, Query...) per (principal, day), found or not
    requests_by_principal_day: dict[tuple[str, int], int] = field(default_factory=dict)

    def __call__(self, principal: str, service: str, operation: str, response: Any) -> None:
        if service != "dynamodb" or operation not in READS:
            return
        n = items_read(operation, response)
        day = max(0, (self.now_ms() - self.start_ms) // DAY_MS)
        key = (principal, day)
        self.requests_by_principal_day[key] = self.requests_by_principal_day.get(key, 0) + 1
        if not n:
            return
        self.by_day[day] = self.by_day.get(day, 0) + n
        self.by_principal[principal] = self.by_principal.get(principal, 0) + n
        self.by_principal_day[key] = self.by_principal_day.get(key, 0) + n

    def summary(self) -> dict[str, Any]:
        days = max(self.by_day, default=-1) + 1
        names = sorted({name for name, _ in self.requests_by_principal_day})
        return {
            "items": sum(self.by_day.values()),
            "by_day": [self.by_day.get(d, 0) for d in range(days)],
            "by_principal": dict(sorted(self.by_principal.items())),
            "by_principal_by_day": {
                name: [self.by_principal_day.get((name, d), 0) for d in range(days)]
                for name in sorted(self.by_principal)
            },
            "requests_by_principal_by_day": {
                name: [self.requests_by_principal_day.get((name, d), 0) for d in range(days)]
                for name in names
            },
        }
