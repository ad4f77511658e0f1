"""Chaos for the digital twin: the failures production will see, injected on purpose.

A :class:`Chaos` is seeded and deterministic. Depending on its profile it

* delivers each order update 1-3 times (EventBridge is at-least-once),
* reorders deliveries within a small window,
* drops deliveries (a stream gap) and then publishes ``StreamGapDetected``, as the
  listener does after reconnecting,
* restarts the listener: drops everything for a stretch, then reports the gap,
* crashes a function (at most once per invocation) before or after one of its side
  effects (an exchange call, a DynamoDB write, a Step Functions callback) - the function
  fails as a Lambda crash would, and Step Functions or the event source retries it,
* makes the exchange fail: responses lost after the order was accepted, 5XX, 429,
  timestamps out of the receive window,
* delivers concurrently: the EventBridge-triggered invocations of a batch (duplicates,
  the next updates of the same order, a gap's reconcile) start at once, one thread each,
  and those of one function overlap, as Lambda runs them without reserved concurrency.

The invariants of :mod:`flipbot_dev.twin.report` are then checked as after any replay.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flipbot.domain.errors import FlipbotError
from flipbot_dev.twin.world import WORLD_SCENARIOS

#: An armed crash strikes at one of the invocation's first CRASH_REACH side effects.
CRASH_REACH = 12

SCENARIOS = (
    "duplicate",
    "reorder",
    "drop",
    "crash",
    "exchange",
    "restart",
    "concurrent",
    "combined",
    *WORLD_SCENARIOS,
)

#: What each scenario turns on (probabilities per opportunity).
PROFILES: dict[str, dict[str, float]] = {
    "none": {},
    "duplicate": {"duplicate": 0.5},
    "reorder": {"reorder": 0.5},
    "drop": {"drop": 0.3},
    "crash": {"crash": 0.15},
    "exchange": {"lost_response": 0.05, "http_5xx": 0.03, "rate_limited": 0.02, "skew": 0.02},
    "restart": {"restart": 0.15},
    # Duplicates and reorders give each batch several deliveries for the same order.
    "concurrent": {"concurrent": 1.0, "duplicate": 0.6, "reorder": 0.3, "drop": 0.05},
    "combined": {
        "duplicate": 0.3,
        "reorder": 0.3,
        "drop": 0.08,
        "crash": 0.05,
        "lost_response": 0.02,
        "http_5xx": 0.01,
        "rate_limited": 0.01,
        "skew": 0.01,
        "restart": 0.05,
    },
    # The hostile world (flipbot_dev.twin.world) acts on the account and the bus, not on the
    # delivery path: its scenarios inject nothing here.
    **{scenario: {} for scenario in WORLD_SCENARIOS},
}


class InjectedCrash(FlipbotError):
    """A function dying mid-flight (out of memory, timeout, a lost sandbox).

    Step Functions sees it as ``Lambda.Unknown``, the name AWS gives such crashes.
    """

    error_type = "Lambda.Unknown"
    retryable = True


@dataclass
class ChaosStats:
    duplicated: int = 0
    reordered: int = 0
    dropped: int = 0
    gaps: int = 0
    crashes: int = 0
    faults: int = 0
    overlapped: int = 0  # deliveries run alongside another of the same function
    #: the world's injections by kind (flipbot_dev.twin.world, poison, hostile_ai)
    injections: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "injections": dict(sorted(self.injections.items()))}


@dataclass
class Chaos:
    profile: str
    seed: int
    stats: ChaosStats = field(default_factory=ChaosStats)
    restart_events_left: int = 0
    _held: list[dict[str, Any]] = field(default_factory=list)

    def flush(self) -> tuple[list[dict[str, Any]], bool]:
        """The end of a run: held deliveries arrive late but arrive, and a listener restart
        still under way finishes - it reconnects and reports its gap, as it would."""
        held: list[dict[str, Any]] = self._held
        self._held = []
        gap = self.restart_events_left > 0
        if gap:
            self.restart_events_left = 0
            self.stats.gaps += 1
        return held, gap

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(
                f"unknown chaos profile {self.profile!r}: choose one of {', '.join(PROFILES)}"
            )
        self.p = PROFILES[self.profile]
        self._rng = random.Random(self.seed)
        self._crash_at: tuple[int, str] | None = None

    @property
    def concurrent(self) -> bool:
        """Whether EventBridge deliveries run concurrently (see module docstring)."""
        return self.p.get("concurrent", 0.0) > 0

    def _hit(self, name: str) -> bool:
        chance = self.p.get(name, 0.0)
        return chance > 0 and self._rng.random() < chance

    # -- deliveries ------------------------------------------------------------------
    def deliveries(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """What the bus delivers for these listener messages, and whether a gap occurred."""
        gap = False
        out: list[dict[str, Any]] = []
        if self.restart_events_left == 0 and self._hit("restart"):
            self.restart_events_left = self._rng.randint(1, 4)
        for message in messages:
            if self.restart_events_left > 0:
                self.restart_events_left -= 1
                self.stats.dropped += 1
                gap = self.restart_events_left == 0 or gap
                continue
            if self._hit("drop"):
                self.stats.dropped += 1
                gap = True
                continue
            copies = 1
            if self._hit("duplicate"):
                copies = self._rng.randint(2, 3)
                self.stats.duplicated += copies - 1
            out.extend([message] * copies)
        # Reorder: a delivery may be held back and arrive after the next batch.
        released, self._held = self._held, []
        kept: list[dict[str, Any]] = []
        for message in out:
            if self._hit("reorder"):
                self._held.append(message)
                self.stats.reordered += 1
            else:
                kept.append(message)
        out = kept + released
        if gap:
            self.stats.gaps += 1
        return out, gap

    # -- crashes around side effects -------------------------------------------------
    def arm(self) -> None:
        """At the start of an invocation: maybe pick the side effect it will die at.

        A function dies at most once per invocation, as a real one does; over many
        invocations and seeds every side effect is hit, before it and after it.
        """
        self._crash_at = None
        if self._hit("crash"):
            self._crash_at = (
                self._rng.randint(1, CRASH_REACH),
                self._rng.choice(("before", "after")),
            )

    def maybe_crash(self, where: str, when: str) -> None:
        if self._crash_at is None:
            return
        countdown, moment = self._crash_at
        if when != moment:
            return
        if countdown > 1:
            self._crash_at = (countdown - 1, moment)
            return
        self._crash_at = None
        self.stats.crashes += 1
        raise InjectedCrash(f"injected crash {when} {where}")

    def wrap(self, target: Any, label: str) -> Any:
        """A proxy of a port whose public methods may crash before or after running."""
        return _CrashingProxy(target, label, self)

    # -- exchange faults ---------------------------------------------------------------
    def exchange_fault(self, method: str, path: str, params: Any) -> Any:
        """The transport's fault hook: a seeded fault for this request, or None."""
        from flipbot_dev.paper.transport import Fault

        placing = method == "POST" and path.endswith("/order")
        if placing and self._hit("lost_response"):
            self.stats.faults += 1
            return Fault.drop_response()
        if self._hit("http_5xx"):
            self.stats.faults += 1
            return Fault.http_5xx()
        if self._hit("rate_limited"):
            self.stats.faults += 1
            return Fault.rate_limited(1)
        if "signature" in params and self._hit("skew"):
            self.stats.faults += 1
            return Fault.timestamp_skew()
        return None


class _CrashingProxy:
    def __init__(self, target: Any, label: str, chaos: Chaos) -> None:
        self._target = target
        self._label = label
        self._chaos = chaos

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value):
            if hasattr(value, "__dict__") and not callable(value) and not name.startswith("_"):
                return _CrashingProxy(value, f"{self._label}.{name}", self._chaos)
            return value
        return _crashing(value, f"{self._label}.{name}", self._chaos)


def _crashing(method: Callable[..., Any], where: str, chaos: Chaos) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        chaos.maybe_crash(where, "before")
        result = method(*args, **kwargs)
        chaos.maybe_crash(where, "after")
        return result

    return call
