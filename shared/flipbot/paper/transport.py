"""Reach a :class:`~flipbot.paper.rest.BinanceRestApp` through ``requests``, without sockets.

:class:`InProcessAdapter` is a ``requests`` transport adapter: mounted on a session it
hands every request to the app and builds a real :class:`requests.Response` from the
answer. :func:`make_client` mounts it on the session of a real python-binance ``Client``,
so the bot's Binance adapter runs unchanged against the paper exchange.

Faults are injected per request by a hook ``(method, path, params) -> Fault | None``:

* ``Fault.drop_response()``: the app processes the request, then the caller gets
  ``requests.exceptions.ReadTimeout`` (the outcome is unknown to the caller);
* ``Fault.http_5xx()``: HTTP 503 without processing;
* ``Fault.rate_limited()``: HTTP 429 (-1003) with ``Retry-After``, without processing;
* ``Fault.banned()``: HTTP 418 (-1003, "IP banned until ...") with ``Retry-After``;
* ``Fault.timestamp_skew(ms)``: the server clock is shifted by ``ms`` for this request,
  so a signed request fails with -1021 as a drifting client clock would;
* ``Fault.connection_error()``: ``requests.exceptions.ConnectionError``, not processed;
* ``Fault.binance_error(code, msg, status, processed)``: a canned Binance error answer,
  given after processing the request when ``processed`` (e.g. -1007, whose outcome is
  unknown) or instead of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from binance.client import Client
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from flipbot.paper import errors as e
from flipbot.paper.rest import BinanceRestApp


class FaultKind(StrEnum):
    DROP_RESPONSE_AFTER_PROCESSING = "drop_response_after_processing"
    HTTP_5XX = "http_5xx"
    RATE_LIMITED = "rate_limited"
    BANNED = "banned"
    TIMESTAMP_SKEW = "timestamp_skew"
    CONNECTION_ERROR = "connection_error"
    BINANCE_ERROR = "binance_error"


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

    @classmethod
    def drop_response(cls) -> Fault:
        return cls(FaultKind.DROP_RESPONSE_AFTER_PROCESSING)

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
        return cls(FaultKind.TIMESTAMP_SKEW, skew_ms=skew_ms)

    @classmethod
    def connection_error(cls) -> Fault:
        return cls(FaultKind.CONNECTION_ERROR)

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


def _without_signature(text: str) -> str:
    return "&".join(p for p in text.split("&") if p and not p.startswith("signature="))


class InProcessAdapter(BaseAdapter):
    """A ``requests`` adapter that serves every request from a :class:`BinanceRestApp`."""

    def __init__(self, app: BinanceRestApp, faults: FaultHook | None = None) -> None:
        super().__init__()
        self.app = app
        self.faults = faults

    def send(  # noqa: PLR0917 - the signature of requests' BaseAdapter.send
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        method = (request.method or "GET").upper()
        url = urlsplit(request.url or "")
        raw_body = request.body
        if isinstance(raw_body, bytes):
            body = raw_body.decode()
        else:
            body = raw_body if isinstance(raw_body, str) else ""
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        payload = _without_signature(url.query) + _without_signature(body)

        fault = self.faults(method, url.path, params) if self.faults else None
        skew = 0
        if fault is not None:
            if fault.kind is FaultKind.CONNECTION_ERROR:
                raise requests.exceptions.ConnectionError(
                    "paper exchange: connection refused", request=request
                )
            if fault.kind is FaultKind.HTTP_5XX:
                return self._response(request, fault.status or 503, {}, "")
            if fault.kind in (FaultKind.RATE_LIMITED, FaultKind.BANNED):
                return self._limited(request, fault)
            if fault.kind is FaultKind.TIMESTAMP_SKEW:
                skew = fault.skew_ms
            if fault.kind is FaultKind.BINANCE_ERROR and not fault.processed:
                return self._canned(request, fault)

        status, response_headers, text = self.app.handle(
            method, url.path, params, headers, payload=payload, clock_skew_ms=skew
        )
        if fault is not None and fault.kind is FaultKind.DROP_RESPONSE_AFTER_PROCESSING:
            raise requests.exceptions.ReadTimeout(
                "paper exchange: response lost after processing", request=request
            )
        if fault is not None and fault.kind is FaultKind.BINANCE_ERROR:
            return self._canned(request, fault)
        return self._response(request, status, response_headers, text)

    def close(self) -> None:
        """Nothing to release: no sockets are opened."""

    def _limited(self, request: requests.PreparedRequest, fault: Fault) -> requests.Response:
        if fault.kind is FaultKind.BANNED:
            until = self.app.clock() + fault.retry_after * 1000
            msg = e.MSG_IP_BANNED.format(until_ms=until)
        else:
            msg = e.MSG_TOO_MUCH_WEIGHT.format(limit=self.app.weight_limit, interval="1 MINUTE")
        body = json.dumps({"code": e.TOO_MANY_REQUESTS, "msg": msg}, separators=(",", ":"))
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "Retry-After": str(fault.retry_after),
        }
        return self._response(request, fault.status, headers, body)

    def _canned(self, request: requests.PreparedRequest, fault: Fault) -> requests.Response:
        body = json.dumps({"code": fault.code, "msg": fault.msg}, separators=(",", ":"))
        headers = {"Content-Type": "application/json;charset=UTF-8"}
        return self._response(request, fault.status, headers, body)

    def _response(
        self,
        request: requests.PreparedRequest,
        status: int,
        headers: Mapping[str, str],
        text: str,
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response._content = text.encode()
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        try:
            response.reason = HTTPStatus(status).phrase
        except ValueError:
            response.reason = "I'm a teapot" if status == 418 else ""
        return response


class _AppClockOffset:
    """A ``timestamp_offset`` for python-binance that makes signed timestamps the app's time.

    python-binance signs ``int(time.time() * 1000 + client.timestamp_offset)``; adding
    this object to the wall-clock milliseconds yields the app's clock instead, so a
    client on a virtual clock stays inside ``recvWindow`` however fast that clock runs.
    """

    def __init__(self, clock: Callable[[], int], skew_ms: int = 0) -> None:
        self.clock = clock
        self.skew_ms = skew_ms

    def __radd__(self, _wall_ms: float) -> float:
        return float(self.clock() + self.skew_ms)


def make_client(
    app: BinanceRestApp,
    api_key: str = "paper",
    api_secret: str = "paper-secret",
    *,
    faults: FaultHook | None = None,
    follow_app_clock: bool = True,
) -> Client:
    """A real python-binance ``Client`` whose HTTP goes to ``app`` in process.

    The client keeps python-binance's base URLs (``https://api.binance.com/api``); its
    session has the :class:`InProcessAdapter` mounted for ``https://`` and ``http://``,
    so nothing leaves the process. With ``follow_app_clock`` (default) signed requests
    are timestamped with the app's clock rather than the wall clock.
    """
    client = Client(api_key, api_secret, ping=False)
    adapter = InProcessAdapter(app, faults)
    client.session.mount("https://", adapter)
    client.session.mount("http://", adapter)
    if follow_app_clock:
        client.timestamp_offset = _AppClockOffset(app.clock)
    return client
