"""Injected failures of the paper exchange: one definition for every transport.

A *fault hook* ``(method, path, params) -> Fault | None`` decides, per request, whether
something goes wrong; :func:`serve` applies the decision to a
:class:`~flipbot_dev.paper.rest.BinanceRestApp` and returns what the caller gets: an
:class:`Answer` (status, headers, body, and a delay before it is sent) or :class:`Lost`
(the connection ends without a response). The in-process transport
(:class:`~flipbot_dev.paper.transport.InProcessAdapter`) and the loopback HTTP server
(:class:`~flipbot_dev.paper.server.PaperHttpServer`) both call :func:`serve`, so a fault
behaves the same whichever way the client is connected:

=================================  =========  ===========================================
fault                              processed  the client sees
=================================  =========  ===========================================
``Fault.drop_response()``          yes        no response: ``ReadTimeout`` in process, a
                                              closed connection over HTTP (both
                                              ``requests`` errors: unknown outcome)
``Fault.connection_error()``       no         ``ConnectionError`` / a closed connection
``Fault.http_5xx(status)``         no         HTTP 503 (or ``status``), empty body
``Fault.rate_limited(s)``          no         HTTP 429, -1003, ``Retry-After: s``
``Fault.banned(s)``                no         HTTP 418, -1003 "IP banned until ...",
                                              ``Retry-After: s``
``Fault.timestamp_skew(ms)``       checked    the server clock is off by ``ms`` for this
                                              request's timestamp check (-1021)
``Fault.slow(s)``                  yes        the normal answer, ``s`` seconds late (a
                                              client timeout shorter than ``s`` turns it
                                              into a lost response)
``Fault.binance_error(...)``       either     a canned ``{"code", "msg"}`` answer
``Fault.restricted_location()``    no         HTTP 451, code 0: a restricted location
``Fault.waf_blocked()``            no         HTTP 403 with an HTML page (the firewall)
=================================  =========  ===========================================

:attr:`BinanceRestApp.location_restricted <flipbot_dev.paper.rest.BinanceRestApp>` answers
every request 451, as Binance does to a caller in a restricted location.

Named, seeded *profiles* (:data:`PROFILES`) turn this into reproducible chaos:
``FaultProfile.injector(seed, clock)`` is a fault hook whose decisions depend only on
the seed and the sequence of requests it sees.

==================  =====================================================================
profile             what happens
==================  =====================================================================
none                nothing
flaky               5 % of requests: HTTP 503, not processed; 5 % of order placements:
                    HTTP 503 -1007 "Timeout waiting for response from backend server",
                    half of them processed
drop-after-accept   30 % of order placements and cancels (``/api/v3/order`` POST and
                    DELETE): processed, then the response is lost (unknown outcome)
slow                30 % of requests answered 50-250 ms late
rate-limit          5 % of requests start a rate limit: HTTP 429 with ``Retry-After: 1``;
                    every request before that second is over is refused the same way, and
                    the 3rd such request bans the client: HTTP 418 with
                    ``Retry-After: 10`` until the ban ends
skew                10 % of signed requests: the server clock is 61 s ahead or behind for
                    the timestamp check: -1021
==================  =====================================================================

The numbers are fields of :class:`FaultProfile`; ``dataclasses.replace`` tunes them.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from flipbot_dev.paper import errors as e

if TYPE_CHECKING:
    from flipbot_dev.paper.rest import BinanceRestApp

ORDER_PATH = "/api/v3/order"
_JSON = "application/json;charset=UTF-8"


class FaultKind(StrEnum):
    DROP_RESPONSE_AFTER_PROCESSING = "drop_response_after_processing"
    HTTP_5XX = "http_5xx"
    RATE_LIMITED = "rate_limited"
    BANNED = "banned"
    TIMESTAMP_SKEW = "timestamp_skew"
    CONNECTION_ERROR = "connection_error"
    BINANCE_ERROR = "binance_error"
    SLOW = "slow"
    WAF_BLOCKED = "waf_blocked"


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure; build it with the class methods."""

    kind: FaultKind
    status: int = 0
    retry_after: int = 0
    skew_ms: int = 0
    code: int = 0
    msg: str = ""
    processed: bool = False
    delay_s: float = 0.0

    @classmethod
    def drop_response(cls) -> Fault:
        return cls(FaultKind.DROP_RESPONSE_AFTER_PROCESSING, processed=True)

    @classmethod
    def http_5xx(cls, status: int = 503) -> Fault:
        return cls(FaultKind.HTTP_5XX, status=status)

    @classmethod
    def rate_limited(cls, retry_after: int = 30) -> Fault:
        return cls(FaultKind.RATE_LIMITED, status=429, retry_after=retry_after)

    @classmethod
    def banned(cls, retry_after: int = 120) -> Fault:
        return cls(FaultKind.BANNED, status=418, retry_after=retry_after)

    @classmethod
    def timestamp_skew(cls, skew_ms: int = -120_000) -> Fault:
        return cls(FaultKind.TIMESTAMP_SKEW, skew_ms=skew_ms, processed=True)

    @classmethod
    def connection_error(cls) -> Fault:
        return cls(FaultKind.CONNECTION_ERROR)

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        return cls(FaultKind.SLOW, delay_s=delay_s, processed=True)

    @classmethod
    def binance_error(
        cls, code: int, msg: str, status: int | None = None, *, processed: bool = False
    ) -> Fault:
        return cls(
            FaultKind.BINANCE_ERROR,
            status=status if status is not None else e.http_status_for(code),
            code=code,
            msg=msg,
            processed=processed,
        )

    @classmethod
    def restricted_location(cls) -> Fault:
        return cls.binance_error(0, e.MSG_RESTRICTED_LOCATION, 451)

    @classmethod
    def waf_blocked(cls) -> Fault:
        return cls(FaultKind.WAF_BLOCKED, status=403)


FaultHook = Callable[[str, str, Mapping[str, str]], Fault | None]


def fault_once(fault: Fault, *, method: str | None = None, path: str | None = None) -> FaultHook:
    """A hook that injects ``fault`` into the first matching request only."""
    fired = False

    def hook(req_method: str, req_path: str, _params: Mapping[str, str]) -> Fault | None:
        nonlocal fired
        if fired or (method and req_method != method.upper()) or (path and req_path != path):
            return None
        fired = True
        return fault

    return hook


# --- applying a fault ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answer:
    """A response to send, ``delay_s`` seconds from now."""

    status: int
    headers: dict[str, str]
    body: str
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Lost:
    """No response: the connection ends. ``processed``: the app handled the request first."""

    processed: bool


def serve(
    app: BinanceRestApp,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    payload: str | None,
    fault: Fault | None,
) -> Answer | Lost:
    """Serve one request through ``app`` with ``fault`` applied (``None``: no fault)."""
    kind = fault.kind if fault is not None else None
    if fault is not None:
        if kind is FaultKind.CONNECTION_ERROR:
            return Lost(processed=False)
        if kind is FaultKind.HTTP_5XX:
            return Answer(fault.status or 503, {}, "")
        if kind in (FaultKind.RATE_LIMITED, FaultKind.BANNED):
            return _limited(app, fault)
        if kind is FaultKind.BINANCE_ERROR and not fault.processed:
            return _canned(fault)
        if kind is FaultKind.WAF_BLOCKED:
            return Answer(fault.status, {"Content-Type": "text/html"}, e.WAF_BLOCKED_PAGE)
    skew = fault.skew_ms if fault is not None and kind is FaultKind.TIMESTAMP_SKEW else 0
    status, response_headers, body = app.handle(
        method, path, params, headers, payload=payload, clock_skew_ms=skew
    )
    if fault is None:
        return Answer(status, response_headers, body)
    if kind is FaultKind.DROP_RESPONSE_AFTER_PROCESSING:
        return Lost(processed=True)
    if kind is FaultKind.BINANCE_ERROR:
        return _canned(fault)
    return Answer(status, response_headers, body, fault.delay_s)


def _limited(app: BinanceRestApp, fault: Fault) -> Answer:
    if fault.kind is FaultKind.BANNED:
        until = app.clock() + fault.retry_after * 1000
        msg = e.MSG_IP_BANNED.format(until_ms=until)
    else:
        msg = e.MSG_TOO_MUCH_WEIGHT.format(limit=app.weight_limit, interval="1 MINUTE")
    body = json.dumps({"code": e.TOO_MANY_REQUESTS, "msg": msg}, separators=(",", ":"))
    headers = {"Content-Type": _JSON, "Retry-After": str(fault.retry_after)}
    return Answer(fault.status, headers, body)


def _canned(fault: Fault) -> Answer:
    body = json.dumps({"code": fault.code, "msg": fault.msg}, separators=(",", ":"))
    return Answer(fault.status, {"Content-Type": _JSON}, body)


# --- profiles --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FaultProfile:
    """A named recipe of random faults; :meth:`injector` makes a seeded fault hook of it.

    Probabilities are per request; "order placements" are ``POST /api/v3/order``.
    """

    name: str
    summary: str
    http_5xx: float = 0.0  # any request: 503 with an empty body, not processed
    order_timeout: float = 0.0  # placements: 503 -1007; half processed, half not
    drop_after_accept: float = 0.0  # placements and cancels: processed, response lost
    slow: float = 0.0  # any request: answered late
    slow_s: tuple[float, float] = (0.05, 0.25)
    rate_limit: float = 0.0  # any request: starts a rate limit (429)
    retry_after_s: int = 1
    ban_after: int = 3  # requests refused during a rate limit before a 418 ban
    ban_s: int = 10
    skew: float = 0.0  # signed requests: -1021 from a server clock off by skew_ms
    skew_ms: int = 61_000

    def injector(
        self,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        *,
        hook: FaultHook | None = None,
    ) -> FaultInjector:
        """A fault hook drawing from ``random.Random(seed)``; ``clock`` (epoch ms) times
        rate limits and bans (needed by ``rate-limit``). ``hook`` is asked first: a fault
        it returns wins over the profile's."""
        return FaultInjector(self, seed, clock, hook)


PROFILES: dict[str, FaultProfile] = {
    p.name: p
    for p in (
        FaultProfile("none", "no faults"),
        FaultProfile(
            "flaky",
            "5% of requests answer HTTP 503 unprocessed; 5% of placements answer 503 -1007 "
            "(half of them processed)",
            http_5xx=0.05,
            order_timeout=0.05,
        ),
        FaultProfile(
            "drop-after-accept",
            "30% of order placements and cancels are processed, then the response is lost",
            drop_after_accept=0.3,
        ),
        FaultProfile("slow", "30% of requests are answered 50-250 ms late", slow=0.3),
        FaultProfile(
            "rate-limit",
            "5% of requests start a 429 rate limit (Retry-After 1 s); the 3rd request sent "
            "during one gets a 418 ban (Retry-After 10 s)",
            rate_limit=0.05,
        ),
        FaultProfile(
            "skew",
            "10% of signed requests fail -1021: the server clock is 61 s off",
            skew=0.1,
        ),
    )
}


def profile(name: str) -> FaultProfile:
    """The profile called ``name`` (``ValueError`` naming the known ones otherwise)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown fault profile {name!r}: choose one of {', '.join(PROFILES)}"
        ) from None


@dataclass
class FaultInjector:
    """A seeded fault hook following a :class:`FaultProfile` (thread-safe).

    Each request draws the same number of random values whatever the outcome, so the
    n-th request of a run always meets the same fate for a given seed.
    """

    profile: FaultProfile
    seed: int = 0
    clock: Callable[[], int] | None = None
    hook: FaultHook | None = None
    injected: dict[FaultKind, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _limited_until: int = field(init=False, default=-1)
    _violations: int = field(init=False, default=0)
    _banned_until: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __call__(self, method: str, path: str, params: Mapping[str, str]) -> Fault | None:
        with self._lock:
            fault = self._decide(method.upper(), path, params)
            if fault is not None:
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
            return fault

    def _decide(self, method: str, path: str, params: Mapping[str, str]) -> Fault | None:
        p = self.profile
        draws = [self._rng.random() for _ in range(6)]
        delay = p.slow_s[0] + (p.slow_s[1] - p.slow_s[0]) * draws[5]
        if self.hook is not None:
            chosen = self.hook(method, path, params)
            if chosen is not None:
                return chosen
        limited = self._rate_limit(draws[0])
        if limited is not None:
            return limited
        placing = method == "POST" and path == ORDER_PATH
        if draws[1] < p.http_5xx:
            return Fault.http_5xx()
        if placing and draws[2] < p.order_timeout:
            return Fault.binance_error(e.TIMEOUT, e.MSG_TIMEOUT, 503, processed=draws[3] < 0.5)
        if path == ORDER_PATH and method in ("POST", "DELETE") and draws[2] < p.drop_after_accept:
            return Fault.drop_response()
        if "signature" in params and draws[3] < p.skew:
            return Fault.timestamp_skew(p.skew_ms if draws[4] < 0.5 else -p.skew_ms)
        if draws[4] < p.slow:
            return Fault.slow(delay)
        return None

    def _rate_limit(self, draw: float) -> Fault | None:
        p = self.profile
        if p.rate_limit <= 0:
            return None
        if self.clock is None:
            raise ValueError(f"fault profile {p.name!r} needs a clock: pass clock= to injector()")
        now = self.clock()
        if now < self._banned_until:
            return Fault.banned(_seconds_until(self._banned_until, now))
        if now < self._limited_until:
            self._violations += 1
            if self._violations >= p.ban_after:
                self._banned_until = now + p.ban_s * 1000
                self._limited_until = -1
                self._violations = 0
                return Fault.banned(p.ban_s)
            return Fault.rate_limited(_seconds_until(self._limited_until, now))
        self._violations = 0
        if draw < p.rate_limit:
            self._limited_until = now + p.retry_after_s * 1000
            return Fault.rate_limited(p.retry_after_s)
        return None


def _seconds_until(until_ms: int, now_ms: int) -> int:
    return max(1, -(-(until_ms - now_ms) // 1000))
