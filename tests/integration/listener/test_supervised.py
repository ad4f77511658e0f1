"""SupervisedConnection on its own: a toy stream over a loopback socket, no Binance.

The toy server sends a counter every 10 ms on each connection; ``"bye"`` is its
notice (what ``serverShutdown`` is to Binance). The toy configuration records what the
supervisor asks of it, so each test names the life-cycle rule it holds the supervisor to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from flipbot.listener.binance_ws import Connection, wall_ms
from flipbot.listener.supervised import StreamConfig, SupervisedConnection

from .conftest import listener_settings

Gap = tuple[str, str, int, int]


@dataclass
class ToyServer:
    """Counts on every connection until told to close it, to say ``"bye"``, or to go quiet."""

    server: Server | None = None
    sockets: list[ServerConnection] = field(default_factory=list)
    silent: bool = False

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def handle(self, ws: ServerConnection) -> None:
        self.sockets.append(ws)
        n = 0
        with contextlib.suppress(ConnectionClosed):
            while True:
                if not self.silent:
                    n += 1
                    await ws.send(json.dumps({"n": n}))
                await asyncio.sleep(0.01)

    async def say(self, text: str, index: int = -1) -> None:
        await self.sockets[index].send(text)

    async def close(self, index: int = -1) -> None:
        await self.sockets[index].close()


@contextlib.asynccontextmanager
async def toy_server() -> AsyncIterator[ToyServer]:
    toy = ToyServer()
    async with serve(toy.handle, "127.0.0.1", 0) as server:
        toy.server = server
        yield toy


class Toy(StreamConfig):
    """Connects to the toy server; ``"bye"`` asks for a hand-over."""

    name = "market"
    label = "toy stream"

    def __init__(self, url: str, *, probe_seconds: float | None = None) -> None:
        self.url = url
        self.silence_seconds = 0.5
        self.probe_seconds = probe_seconds
        self.calls: list[str] = []
        self.received: list[int] = []
        self.slow_handover = 0.0
        self.probe_verdict: str | None = None

    def on_message(self, conn: Connection, text: str, recv_ms: int) -> None:
        if text == "bye":
            conn.signal("bye")
        else:
            self.received.append(json.loads(text)["n"])

    async def subscribe(self, conn: Connection, *, handover: bool) -> None:
        self.calls.append(f"subscribe(handover={handover})")
        if handover:
            await asyncio.sleep(self.slow_handover)
        conn.subscribed_ms = wall_ms()

    async def probe(self, conn: Connection) -> None:
        self.calls.append("probe")
        if self.probe_verdict is not None:
            conn.end(self.probe_verdict)

    async def retire(self, old: Connection) -> bool:
        self.calls.append("retire")
        return True

    def release(self, new: Connection) -> None:
        self.calls.append("release")

    def on_gap(self) -> None:
        self.calls.append("gap")


@dataclass
class Run:
    supervisor: SupervisedConnection
    config: Toy
    gaps: list[Gap]
    history: deque[tuple[str, str]]
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def until(self, condition: Any, timeout: float = 3.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            assert loop.time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.01)

    async def finish(self) -> None:
        self.stop.set()
        self.supervisor.wake.set()
        await asyncio.wait_for(self.task, 3)


def start(config: Toy, **overrides: str) -> Run:
    settings = listener_settings("ws://127.0.0.1:1", **overrides)
    gaps: list[Gap] = []
    history: deque[tuple[str, str]] = deque(maxlen=100)
    stop = asyncio.Event()

    def sink(stream: str, reason: str, since_ms: int, until_ms: int) -> None:
        gaps.append((stream, reason, since_ms, until_ms))

    supervisor = SupervisedConnection(config, settings, stop=stop, gap_sink=sink, history=history)
    task = asyncio.create_task(supervisor.run(wall_ms()))
    return Run(supervisor, config, gaps, history, stop, task)


def run(scenario: Any) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 8))


def test_given_a_stream_without_startup_gap_then_connecting_reports_none() -> None:
    async def scenario() -> Run:
        async with toy_server() as server:
            r = start(Toy(server.url))
            await r.until(lambda: r.supervisor.live and len(r.config.received) >= 3)
            await r.finish()
            return r

    r = run(scenario())
    assert r.gaps == []
    assert r.config.calls[0] == "subscribe(handover=False)"
    assert r.supervisor.connections == 1
    assert r.supervisor.conn is None  # stopped: nothing left open


def test_given_the_connection_closed_then_reconnected_with_a_gap_around_the_loss() -> None:
    async def scenario() -> tuple[Run, int]:
        async with toy_server() as server:
            r = start(Toy(server.url))
            await r.until(lambda: r.supervisor.live)
            await asyncio.sleep(0.05)
            lost_at = wall_ms()
            await server.close()
            await r.until(lambda: r.supervisor.connections == 2 and r.supervisor.live)
            await r.finish()
            return r, lost_at

    r, lost_at = run(scenario())
    assert list(r.history) == [("market", "closed")]
    assert [(stream, reason) for stream, reason, *_ in r.gaps] == [("market", "closed")]
    _, _, since_ms, until_ms = r.gaps[0]
    assert since_ms <= lost_at <= until_ms
    assert r.config.calls.count("gap") == 1  # the configuration heard of it first
    assert r.supervisor.gaps == 1


def test_given_a_notice_then_handed_over_new_connection_first_and_no_gap() -> None:
    async def scenario() -> tuple[Run, Connection, Connection]:
        async with toy_server() as server:
            r = start(Toy(server.url))
            await r.until(lambda: r.supervisor.live)
            old = r.supervisor.conn
            await server.say("bye")
            await r.until(lambda: r.supervisor.conn is not old and r.supervisor.live)
            new = r.supervisor.conn
            await r.finish()
            assert old is not None
            assert new is not None
            return r, old, new

    r, old, new = run(scenario())
    assert list(r.history) == [("market", "bye")]
    assert r.gaps == []
    assert r.config.calls[1:4] == ["subscribe(handover=True)", "retire", "release"]
    assert new.subscribed_ms <= old.ended_ms
    assert old.ended.result() == "handed over (bye)"


def test_given_the_old_connection_closed_before_the_new_one_subscribed_then_a_gap() -> None:
    async def scenario() -> Run:
        async with toy_server() as server:
            config = Toy(server.url)
            config.slow_handover = 0.3
            r = start(config)
            await r.until(lambda: r.supervisor.live)
            await server.say("bye")
            await asyncio.sleep(0.1)  # the new connection is still subscribing
            await server.close(0)
            await r.until(lambda: r.supervisor.connections == 2 and r.supervisor.live)
            await r.finish()
            return r

    r = run(scenario())
    assert [(stream, reason) for stream, reason, *_ in r.gaps] == [
        ("market", "bye: hand-over incomplete")
    ]
    assert "retire" not in r.config.calls  # nothing left to retire
    assert list(r.history) == [("market", "bye")]


def test_given_connection_age_limit_then_rotated_by_hand_over() -> None:
    async def scenario() -> Run:
        async with toy_server() as server:
            r = start(Toy(server.url), MAX_CONNECTION_AGE_SECONDS="0.3")
            await r.until(lambda: ("market", "rotate") in r.history)
            await r.finish()
            return r

    r = run(scenario())
    assert r.gaps == []
    assert "subscribe(handover=True)" in r.config.calls


def test_given_silence_or_a_failed_probe_then_reconnected_with_that_reason() -> None:
    async def scenario() -> tuple[Run, Run]:
        async with toy_server() as server:
            quiet = start(Toy(server.url))
            await quiet.until(lambda: quiet.supervisor.live)
            server.silent = True
            await quiet.until(lambda: ("market", "silent") in quiet.history)
            server.silent = False
            await quiet.until(lambda: quiet.supervisor.connections == 2 and quiet.supervisor.live)
            await quiet.finish()
            config = Toy(server.url, probe_seconds=0.05)
            probed = start(config)
            await probed.until(lambda: probed.supervisor.live)
            server.silent = True
            await probed.until(lambda: "probe" in config.calls)
            config.probe_verdict = "subscription lost"
            await probed.until(lambda: ("market", "subscription lost") in probed.history)
            server.silent = False
            await probed.until(lambda: probed.supervisor.connections == 2)
            await probed.finish()
            return quiet, probed

    quiet, probed = run(scenario())
    assert [(s, r) for s, r, *_ in quiet.gaps] == [("market", "silent")]
    assert [(s, r) for s, r, *_ in probed.gaps] == [("market", "subscription lost")]
    assert "probe" not in quiet.config.calls  # no probe_seconds: never probed
