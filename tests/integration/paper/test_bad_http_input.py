"""Bad HTTP on the paper exchange's socket: a Binance error body, never a dead server.

Each request is written byte for byte on a raw socket, as a broken or hostile client
would send it; the answer is read back raw. After every one, the same server still
serves the real python-binance client.
"""

from __future__ import annotations

import json
import socket

import pytest

from flipbot_dev.paper.server import PaperHttpServer

from .conftest import Loopback

MALFORMED = {
    "code": -1102,
    "msg": "A mandatory parameter was not sent, was empty/null, or malformed.",
}
ILLEGAL = {"code": -1100, "msg": "Illegal characters found in a parameter."}


def exchange(server: PaperHttpServer, raw: bytes, *, half_close: bool = False) -> bytes:
    """Send ``raw`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65_536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(answer: bytes) -> tuple[int, dict[str, str], object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(body)


def post(length: str, body: bytes) -> bytes:
    return (
        b"POST /api/v3/order HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + length.encode() + b"\r\n\r\n" + body
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(post("ten", b"symbol=TRUMPUSDC"), MALFORMED, id="non-numeric-length"),
        pytest.param(post("-5", b"symbol=TRUMPUSDC"), MALFORMED, id="negative-length"),
        pytest.param(post("9" * 30, b"symbol=TRUMPUSDC"), MALFORMED, id="huge-length"),
        pytest.param(post("70000", b"symbol=TRUMPUSDC"), MALFORMED, id="above-body-limit"),
        pytest.param(post("12", b"symbol=\xff\xfe\x80AB"), ILLEGAL, id="body-not-utf8"),
        pytest.param(
            b"GET /api/v3/ping?x=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
            ILLEGAL,
            id="query-not-ascii",
        ),
        pytest.param(b"\x00\x01\x02garbage\r\n\r\n", MALFORMED, id="garbage-request-line"),
        pytest.param(
            b"POST /api/v3/order HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            MALFORMED,
            id="chunked-body",
        ),
    ],
)
def test_an_unreadable_request_is_answered_400_in_binances_error_shape(
    loopback: Loopback, raw: bytes, expected: dict[str, object]
) -> None:
    # Given a running paper exchange, When a client sends a request it cannot read
    status, headers, body = parse(exchange(loopback.server, raw))

    # Then it answers 400 with Binance's error body and closes that connection
    assert (status, body) == (400, expected)
    assert headers["content-type"].startswith("application/json")
    assert headers["connection"] == "close"
    # And the server goes on serving the real client
    assert loopback.client().get_server_time()["serverTime"] == loopback.clock.now
    assert loopback.server.internal_errors == []


def test_a_body_shorter_than_its_content_length_is_refused(loopback: Loopback) -> None:
    # Given a client that announces 100 bytes, sends 16 and stops sending
    answer = exchange(loopback.server, post("100", b"symbol=TRUMPUSDC"), half_close=True)

    # Then the truncated request is refused, not served with what arrived
    assert parse(answer)[::2] == (400, MALFORMED)
    assert loopback.exchange.open_orders(None) == []
    assert loopback.client().ping() == {}


def test_json_nested_deeper_than_the_parser_goes_is_an_illegal_parameter(
    loopback: Loopback,
) -> None:
    # Given exchangeInfo asked for symbols=[[[[...]]]] fifty thousand levels deep
    raw = b"GET /api/v3/exchangeInfo?symbols=" + b"[" * 50_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"

    # When it reaches the server
    status, _, body = parse(exchange(loopback.server, raw))

    # Then it is refused as Binance refuses a bad symbols list, and the server lives on
    assert status == 400
    assert isinstance(body, dict)
    assert body["code"] == -1100
    assert loopback.client().ping() == {}
    assert loopback.server.internal_errors == []
