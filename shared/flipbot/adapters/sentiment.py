"""Outside signals for the prompt over HTTP: the Fear & Greed index and news sentiment.

Two :class:`~flipbot.ai.context.ContextProvider` implementations, made by
:func:`sentiment_providers` from two URLs (an empty URL leaves a provider off; both are
off by default). :func:`~flipbot.ai.context.gather_signals` runs them beside the
consultation and leaves out whichever fails or is late.

**Fear & Greed** (:class:`FearGreedProvider`, name ``fear_greed``): alternative.me's
public index, ``GET {base_url}/fng/?limit=1`` (default base URL
``https://api.alternative.me``), which answers::

    {"name": "Fear and Greed Index",
     "data": [{"value": "40", "value_classification": "Fear",
               "timestamp": "1551157200", "time_until_update": "68499"}],
     "metadata": {"error": null}}

and gives ``{"fear_greed_index": "40", "fear_greed_label": "Fear"}``. ``value`` is an
integer 0..100 (a string or a number), ``value_classification`` a short non-empty text.
The index is market-wide: one answer serves every symbol.

**News sentiment** (:class:`HttpSentimentProvider`, name ``news`` by default): any
service that keeps this contract. The request is ``GET {url}?symbol=<base asset>``
(``TRUMP`` for ``TRUMPUSDC``; added to the URL's own query if it has one) with
``Accept: application/json`` and, when a token is set, ``Authorization: Bearer <token>``.
The answer is a JSON object::

    {"score": 0.35, "label": "bullish", "sources": 12}

``score`` (required): a number (or numeric string) in -1..1, -1 the most bearish;
``label`` (optional): a text of 1..32 characters; ``sources`` (optional): an integer
>= 0, how many items the score is made of. Other fields are ignored. It gives
``{"news_sentiment": "0.35", "news_sentiment_label": "bullish",
"news_sentiment_sources": "12"}`` (the last two only when the answer has them; the score
rounded to 3 decimals).

**Errors.** Every failure raises :class:`~flipbot.domain.errors.SignalUnavailable` (the
consultation goes on without the signal; the same request may succeed later) with
``provider``, a ``reason`` code and the message ``"<provider>: <what was wrong>"``:
``timeout`` (no complete answer within ``timeout_s``), ``connection`` (refused, reset,
DNS, TLS), ``http_<status>`` (any 3xx, 4xx or 5xx: redirects are not followed, so the
token never reaches another host), ``rate_limited`` (429), ``too_large`` (a body over
64 KiB), ``not_json``, ``malformed`` (not the shape above: a missing field, a wrong
type), ``out_of_range`` (a value outside its range) and ``api_error`` (a non-null
``metadata.error``). Messages name the host, never the whole URL (its query may hold a
key), and never the token; nothing is chained to the exception.

**Caching.** Answers are kept for ``ttl_s`` seconds on the ``now_s`` clock (default
300 s for Fear & Greed, which changes once a day; 60 s for news), keyed by what changes
the answer: nothing for Fear & Greed, the base asset for news (``TRUMPUSDC`` and
``TRUMPUSDT`` share an entry). A failure is never kept as an answer. It is kept as a
failure for ``failure_ttl_s`` seconds (default 30 s), or for as long as a 429's
``Retry-After`` asks (at most 600 s): in that time ``fetch`` raises at once, without a
request, an error of the same reason whose message ends ``(cached, next try in Ns)``.
A dead or rate-limiting provider thus costs one request, and at most one timeout's
wait, per hold and warm sandbox, instead of one per consultation. A fresh failure is
logged once as a warning (its message); cached ones are not logged again.

Only the standard library is used, and ``urllib.request`` is imported on the first
fetch, not at cold start. ``timeout_s`` bounds each socket operation (connect, each
read), and the body is given up once ``timeout_s`` has passed since the request began
(a server trickling bytes times out too); a slow DNS lookup is bounded only by
``gather_signals``' limit. A
request that outlives that limit goes on in the background and its answer (or failure)
still fills the cache for the next consultation.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flipbot.ai.context import ContextProvider
from flipbot.domain.errors import ConfigurationError, SignalUnavailable

__all__ = [
    "DEFAULT_FEAR_GREED_URL",
    "DEFAULT_TIMEOUT_SECONDS",
    "FearGreedProvider",
    "HttpSentimentProvider",
    "base_asset",
    "sentiment_providers",
]

logger = logging.getLogger(__name__)

DEFAULT_FEAR_GREED_URL = "https://api.alternative.me"
DEFAULT_TIMEOUT_SECONDS = 2.0
_MAX_BODY_BYTES = 64 * 1024
_MAX_HOLD_SECONDS = 600.0
_MAX_LABEL_CHARS = 32
_MAX_CACHE_ENTRIES = 64
_INTEGER = re.compile(r"-?[0-9]+")
#: quote assets stripped from a symbol to find its base asset, longest first
_QUOTE_ASSETS: tuple[str, ...] = (
    *("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP"),
    *("DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "GBP", "AUD"),
)


@dataclass(frozen=True, slots=True)
class _Entry:
    until: float
    values: Mapping[str, str] | None = None
    error: SignalUnavailable | None = None


class _CachedHttpSource:
    """What both providers share: validation of the timings, the cache, redaction."""

    name: str

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float,
        ttl_s: float,
        failure_ttl_s: float,
        now_s: Callable[[], float],
        secret: str = "",
    ) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ConfigurationError(f"{name}: timeout_s={timeout_s!r} must be > 0")
        for label, value in (("ttl_s", ttl_s), ("failure_ttl_s", failure_ttl_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigurationError(f"{name}: {label}={value!r} must be >= 0")
        self.name = name
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.failure_ttl_s = failure_ttl_s
        self._now_s = now_s
        self._secret = secret
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def fetch(self, symbol: str) -> Mapping[str, str]:
        key = self._cache_key(symbol)
        now = self._now_s()
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None and now < entry.until:
            if entry.error is not None:
                cached = entry.error
                raise SignalUnavailable(
                    cached.provider,
                    cached.reason,
                    f"{cached.detail} (cached, next try in {math.ceil(entry.until - now)}s)",
                )
            return dict(entry.values or {})
        try:
            values = self._load(key)
        except SignalUnavailable as exc:
            error = self._redacted(exc)
            hold = max(self.failure_ttl_s, min(exc.retry_after or 0.0, _MAX_HOLD_SECONDS))
            self._store(key, _Entry(until=self._now_s() + hold, error=error))
            logger.warning("%s", error)
            raise error from None
        self._store(key, _Entry(until=self._now_s() + self.ttl_s, values=dict(values)))
        return dict(values)

    def _cache_key(self, symbol: str) -> str:
        raise NotImplementedError

    def _load(self, key: str) -> Mapping[str, str]:
        raise NotImplementedError

    def _store(self, key: str, entry: _Entry) -> None:
        with self._lock:
            self._cache[key] = entry
            if len(self._cache) > _MAX_CACHE_ENTRIES:
                now = self._now_s()
                for stale in [k for k, e in self._cache.items() if e.until <= now]:
                    del self._cache[stale]
                while len(self._cache) > _MAX_CACHE_ENTRIES:
                    del self._cache[next(iter(self._cache))]

    def _redacted(self, exc: SignalUnavailable) -> SignalUnavailable:
        if not self._secret or self._secret not in str(exc):
            return exc
        return SignalUnavailable(
            exc.provider,
            exc.reason,
            exc.detail.replace(self._secret, "***"),
            retry_after=exc.retry_after,
        )

    def _error(self, reason: str, detail: str) -> SignalUnavailable:
        return SignalUnavailable(self.name, reason, detail)


class FearGreedProvider(_CachedHttpSource):
    """The market-wide Fear & Greed index of alternative.me (see the module docstring)."""

    def __init__(
        self,
        base_url: str = DEFAULT_FEAR_GREED_URL,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
        ttl_s: float = 300.0,
        failure_ttl_s: float = 30.0,
        now_s: Callable[[], float] = time.monotonic,
        name: str = "fear_greed",
    ) -> None:
        super().__init__(
            name, timeout_s=timeout_s, ttl_s=ttl_s, failure_ttl_s=failure_ttl_s, now_s=now_s
        )
        self.url = _checked_url(name, "base_url", base_url).rstrip("/") + "/fng/?limit=1"

    def _cache_key(self, symbol: str) -> str:
        return ""  # market-wide

    def _load(self, key: str) -> Mapping[str, str]:
        body = _get_json(self.name, self.url, {}, self.timeout_s)
        if not isinstance(body, dict):
            raise self._error("malformed", f"answer is {_kind(body)}, not an object")
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("error") is not None:
            raise self._error("api_error", f"metadata.error is {_short(metadata['error'])}")
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise self._error("malformed", f"data is {_short(data)}, not a non-empty list")
        latest = data[0]
        if not isinstance(latest, dict):
            raise self._error("malformed", f"data[0] is {_kind(latest)}, not an object")
        raw = latest.get("value")
        value = _integer(raw)
        if value is None:
            raise self._error("malformed", f"data[0].value is {_short(raw)}, not an integer")
        if not 0 <= value <= 100:
            raise self._error("out_of_range", f"data[0].value {value} is outside 0..100")
        label = latest.get("value_classification")
        if not _is_label(label):
            raise self._error(
                "malformed",
                f"data[0].value_classification is {_short(label)}, "
                f"not a text of 1..{_MAX_LABEL_CHARS} characters",
            )
        return {"fear_greed_index": str(value), "fear_greed_label": str(label).strip()}


class HttpSentimentProvider(_CachedHttpSource):
    """A news or social sentiment score per base asset (see the module docstring).

    ``token`` is sent as ``Authorization: Bearer <token>``; it is never logged nor put in
    an error message. ``param`` is the query parameter that carries the base asset.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        name: str = "news",
        param: str = "symbol",
        timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
        ttl_s: float = 60.0,
        failure_ttl_s: float = 30.0,
        now_s: Callable[[], float] = time.monotonic,
    ) -> None:
        token = token.strip()
        if not (token.isascii() and token.isprintable()):
            raise ConfigurationError(
                f"{name}: the token must be printable ASCII (it is not shown here)"
            )
        if not param:
            raise ConfigurationError(f"{name}: param must name a query parameter")
        super().__init__(
            name,
            timeout_s=timeout_s,
            ttl_s=ttl_s,
            failure_ttl_s=failure_ttl_s,
            now_s=now_s,
            secret=token,
        )
        self.url = _checked_url(name, "url", url)
        self.param = param
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __repr__(self) -> str:  # the token stays out of reprs (debug logs, tracebacks)
        return f"HttpSentimentProvider(name={self.name!r}, host={urlsplit(self.url).hostname!r})"

    def _cache_key(self, symbol: str) -> str:
        return base_asset(symbol)

    def _load(self, key: str) -> Mapping[str, str]:
        parts = urlsplit(self.url)
        query = urlencode({self.param: key})
        url = urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))
        body = _get_json(self.name, url, self._headers, self.timeout_s)
        if not isinstance(body, dict):
            raise self._error("malformed", f"answer is {_kind(body)}, not an object")
        if "score" not in body:
            raise self._error("malformed", "score is missing")
        raw = body["score"]
        score = _number(raw)
        if score is None:
            raise self._error("malformed", f"score is {_short(raw)}, not a finite number")
        if not -1 <= score <= 1:
            raise self._error("out_of_range", f"score {score:g} is outside -1..1")
        values = {"news_sentiment": f"{round(score, 3) + 0.0:g}"}
        label = body.get("label")
        if label is not None:
            if not _is_label(label):
                raise self._error(
                    "malformed",
                    f"label is {_short(label)}, not a text of 1..{_MAX_LABEL_CHARS} characters",
                )
            values["news_sentiment_label"] = str(label).strip()
        raw_sources = body.get("sources")
        if raw_sources is not None:
            sources = _integer(raw_sources)
            if sources is None:
                raise self._error("malformed", f"sources is {_short(raw_sources)}, not an integer")
            if sources < 0:
                raise self._error("out_of_range", f"sources {sources} is negative")
            values["news_sentiment_sources"] = str(sources)
        return values


def sentiment_providers(
    fear_greed_url: str,
    news_url: str,
    news_token: str = "",
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[ContextProvider]:
    """The configured providers: Fear & Greed when ``fear_greed_url`` is set (its base
    URL, e.g. ``https://api.alternative.me``), news sentiment when ``news_url`` is set.
    Empty strings leave them off. Raises :class:`ConfigurationError` for a URL that is
    not http(s) with a host, or a token with a control character."""
    providers: list[ContextProvider] = []
    if fear_greed_url.strip():
        providers.append(FearGreedProvider(fear_greed_url.strip(), timeout_s=timeout_s))
    if news_url.strip():
        providers.append(
            HttpSentimentProvider(news_url.strip(), token=news_token, timeout_s=timeout_s)
        )
    return providers


def base_asset(symbol: str) -> str:
    """``TRUMP`` for ``TRUMPUSDC``: the symbol without a known quote asset at its end
    (the symbol itself when none is known)."""
    upper = symbol.strip().upper()
    for quote in _QUOTE_ASSETS:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)]
    return upper


# ---------------------------------------------------------------------------- HTTP


def _checked_url(provider: str, setting: str, url: str) -> str:
    """``url`` when it is http(s) with a host; the message never repeats the URL (its
    query may hold a key)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{provider}: {setting} must be an http(s) URL with a host "
            f"(scheme {parts.scheme or 'none'!r})"
        )
    return url.strip()


def _get_json(provider: str, url: str, headers: Mapping[str, str], timeout_s: float) -> Any:
    """The JSON body of ``GET url``, or :class:`SignalUnavailable`."""
    import http.client
    import urllib.error
    import urllib.request

    host = urlsplit(url).hostname
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "flipbot", **headers}
    )
    deadline = time.monotonic() + timeout_s

    def fail(reason: str, detail: str, retry_after: float | None = None) -> SignalUnavailable:
        return SignalUnavailable(provider, reason, detail, retry_after=retry_after)

    try:
        with _opener().open(request, timeout=timeout_s) as response:
            body = _read_body(response, deadline)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
        exc.close()
        reason = "rate_limited" if status == 429 else f"http_{status}"
        raise fail(reason, f"HTTP {status} from {host}", retry_after) from None
    except _BodyTooLarge:
        raise fail("too_large", f"answer from {host} is over {_MAX_BODY_BYTES} bytes") from None
    except TimeoutError:
        raise fail("timeout", f"no complete answer from {host} within {timeout_s:g}s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise fail("timeout", f"no complete answer from {host} within {timeout_s:g}s") from None
        raise fail("connection", f"{host} unreachable ({_kind_of(exc.reason)})") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise fail("connection", f"request to {host} failed ({type(exc).__name__})") from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise fail("not_json", f"answer from {host} is not JSON") from None


class _BodyTooLarge(Exception):
    pass


def _read_body(response: Any, deadline: float) -> bytes:
    """The body, read in chunks until ``deadline`` (a trickling server times out too)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read1(16384)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)


@functools.cache
def _opener() -> Any:
    """An opener that follows no redirect (a 3xx is an ``HTTPError``); made on first use."""
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(_NoRedirect)


# ---------------------------------------------------------------------------- values


def _integer(value: Any) -> int | None:
    """An integer from a JSON integer or a string of digits; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _number(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string; ``None`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _is_label(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= _MAX_LABEL_CHARS


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is ignored)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _kind(value: Any) -> str:
    """What a JSON value is, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a text" if isinstance(value, str) else "a value"


def _kind_of(reason: Any) -> str:
    return type(reason).__name__ if isinstance(reason, BaseException) else "error"


def _short(value: Any) -> str:
    """``value`` as JSON, cut to 40 characters, for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
