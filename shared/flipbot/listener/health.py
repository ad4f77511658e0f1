"""The listener's health endpoint and the container health check that calls it.

The process serves ``GET /health`` on ``HEALTH_HOST:HEALTH_PORT`` (``127.0.0.1:8080``;
only the container itself asks): ``200`` with a JSON body while healthy, ``503`` with
the same body otherwise. Healthy means the event loop answers and each stream is
either live or was lost less than ``HEALTH_MAX_GAP_SECONDS`` ago.

``python -m flipbot.listener.health`` is the ``HealthCheck`` command of the task
definition: exit 0 on a 200, 1 otherwise. It runs every 30 seconds on a quarter of a
vCPU, so it imports the standard library only (nothing from the rest of flipbot).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

StateFn = Callable[[], tuple[bool, dict[str, Any]]]


async def serve(state: StateFn, host: str, port: int) -> asyncio.Server:
    """Start the endpoint; ``state()`` returns ``(healthy, body)``. Port 0 picks a free one."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path.split(b"?")[0] in (b"/health", b"/"):
                healthy, body = state()
                status = "200 OK" if healthy else "503 Service Unavailable"
                payload = json.dumps(body, default=str).encode()
            else:
                status, payload = "404 Not Found", b'{"error": "not found"}'
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + payload)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.LimitOverrunError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def check(host: str, port: int, timeout: float = 3.0) -> tuple[int, str]:
    """``GET /health``: ``(HTTP status, body)``; status 0 when nothing answered."""
    import http.client

    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError as exc:
        return 0, f"no answer from http://{host}:{port}/health: {exc}"
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when the listener answers 200, 1 otherwise (``--port``/``--host`` or the env)."""
    args = list(sys.argv[1:] if argv is None else argv)
    host = os.environ.get("HEALTH_HOST") or "127.0.0.1"
    port = int(os.environ.get("HEALTH_PORT") or 8080)
    while args:
        flag = args.pop(0)
        if flag in ("--port", "--host") and args:
            value = args.pop(0)
            if flag == "--port":
                port = int(value)
            else:
                host = value
        else:
            print(f"usage: python -m flipbot.listener.health [--host H] [--port N] ({flag}?)")
            return 2
    status, body = check(host, port)
    print(f"{status} {body}" if status else body)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
