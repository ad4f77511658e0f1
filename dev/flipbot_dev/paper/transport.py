"""The real python-binance client served by a :class:`BinanceRestApp` in process, without sockets.

:class:`InProcessAdapter` is a ``requests`` transport adapter: mounted on a session it
hands every request to the app and builds a real :class:`requests.Response` from the
answer. :func:`make_client` mounts it on the session of a real python-binance ``Client``,
so the bot's Binance adapter runs unchanged against the paper exchange.

Faults are injected per request by a hook ``(method, path, params) -> Fault | None``
(see :mod:`flipbot_dev.paper.faults`, which the loopback HTTP server shares): a lost
response raises ``requests.exceptions.ReadTimeout`` when the app processed the request
and ``requests.exceptions.ConnectionError`` when it did not; a slow answer sleeps, or
raises ``ReadTimeout`` after processing when the delay reaches the request's timeout;
every other fault is an HTTP answer, as Binance would give it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from binance.client import Client
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from flipbot_dev.paper.faults import Fault, FaultHook, FaultKind, Lost, fault_once, serve
from flipbot_dev.paper.rest import BinanceRestApp

__all__ = [
    "AppClockOffset",
    "Fault",
    "FaultHook",
    "FaultKind",
    "InProcessAdapter",
    "fault_once",
    "make_client",
    "split_request",
]


def _without_signature(text: str) -> str:
    return "&".join(p for p in text.split("&") if p and not p.startswith("signature="))


def split_request(query: str, body: str) -> tuple[dict[str, str], str]:
    """``(params, signed payload)`` of a request: query then body parameters, and the
    text Binance signs (query string then body, without ``signature``)."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    return params, _without_signature(query) + _without_signature(body)


def _read_timeout(timeout: float | tuple[float | None, float | None] | None) -> float | None:
    if isinstance(timeout, tuple):
        return timeout[1]
    return timeout


class InProcessAdapter(BaseAdapter):
    """A ``requests`` adapter that serves every request from a :class:`BinanceRestApp`.

    ``sleep`` waits out slow answers (``time.sleep`` by default).
    """

    def __init__(
        self,
        app: BinanceRestApp,
        faults: FaultHook | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.app = app
        self.faults = faults
        self.sleep = sleep

    def send(
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
        params, payload = split_request(url.query, body)
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}

        fault = self.faults(method, url.path, params) if self.faults else None
        outcome = serve(self.app, method, url.path, params, headers, payload=payload, fault=fault)
        if isinstance(outcome, Lost):
            if outcome.processed:
                raise requests.exceptions.ReadTimeout(
                    "paper exchange: response lost after processing", request=request
                )
            raise requests.exceptions.ConnectionError(
                "paper exchange: connection refused", request=request
            )
        if outcome.delay_s > 0:
            limit = _read_timeout(timeout)
            if limit is not None and outcome.delay_s >= limit:
                raise requests.exceptions.ReadTimeout(
                    "paper exchange: no response within the timeout", request=request
                )
            self.sleep(outcome.delay_s)
        return self._response(request, outcome.status, outcome.headers, outcome.body)

    def close(self) -> None:
        """Nothing to release: no sockets are opened."""

    @staticmethod
    def _response(
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


class AppClockOffset:
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


_AppClockOffset = AppClockOffset  # the name used before it was public


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
        client.timestamp_offset = AppClockOffset(app.clock)
    return client
