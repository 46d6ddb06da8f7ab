"""serve's HTTP/1.1 server on real loopback sockets: graceful drain, and the ASGI lifespan runner."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import pytest
from http1_support import GET, App, Reader, answer, echo, exchange, running

from selectors_lib.gateway._asgi_lifespan import Lifespan, LifespanError


def test_drain_finishes_requests_in_flight_and_refuses_new_ones(loop_kind: str) -> None:
    release, entered = threading.Event(), threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            entered.set()
            await asyncio.to_thread(release.wait, 5)
        await answer(send, 200, b"done")

    with running(app, loop_kind) as run:
        idle = run.connect()
        idle.sendall(GET)
        idle_reader = Reader(idle)
        assert idle_reader.response()[2] == b"done"
        busy = run.connect()
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        assert entered.wait(5)
        run.call(run.server.close)
        draining = asyncio.run_coroutine_threadsafe(run.server.drain(10), run.loop)
        assert idle_reader.closed(timeout=2)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", run.port), timeout=2)
        assert not draining.done()
        release.set()
        reader = Reader(busy)
        status, headers, body = reader.response()
        assert (status, headers["connection"], body) == (200, "close", b"done")
        assert reader.closed()
        assert draining.result(5) is True


def test_force_cancels_what_still_runs(loop_kind: str) -> None:
    cancelled, entered = threading.Event(), threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with running(app, loop_kind) as run:
        sock = run.connect()
        sock.sendall(GET)
        assert entered.wait(5)
        run.call(run.server.close)
        draining = asyncio.run_coroutine_threadsafe(run.server.drain(30), run.loop)
        run.call(run.server.force)
        assert draining.result(5) is False
        assert cancelled.is_set()
        assert Reader(sock).closed()


def lifespan_app(events: list[str], startup: str = "complete", shutdown: str = "ok") -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await echo(scope, receive, send)
            return
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                if startup == "raise":
                    raise RuntimeError("startup raised (on purpose)")
                if startup == "failed":
                    await send({"type": "lifespan.startup.failed", "message": "no db"})
                    return
                scope["state"]["pool"] = "ready"
                await send({"type": "lifespan.startup.complete"})
            else:
                if shutdown == "raise":
                    raise RuntimeError("shutdown raised (on purpose)")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def test_lifespan_startup_state_reaches_requests_and_shutdown_runs_once(loop_kind: str) -> None:
    events: list[str] = []
    with running(lifespan_app(events), loop_kind, lifespan=True) as run:
        assert json.loads(exchange(run, GET)[1][2])["state"] == ["pool"]
        assert run.lifespan is not None
        run.run(run.lifespan.shutdown())
        assert events == ["lifespan.startup", "lifespan.shutdown"]
    # The server stops it a second time: nothing is sent again.
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.parametrize("startup", ["failed", "raise"])
def test_lifespan_startup_failure_raises(startup: str) -> None:
    async def main() -> None:
        lifespan = Lifespan(lifespan_app([], startup=startup))
        with pytest.raises(LifespanError, match="no db" if startup == "failed" else "raised"):
            await lifespan.startup()
        await lifespan.shutdown()  # nothing to shut down, and no error

    asyncio.run(main())


def test_an_app_without_lifespan_starts_and_stops() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])  # returns: it does not speak the protocol

    async def main() -> None:
        lifespan = Lifespan(app)
        await lifespan.startup()
        await lifespan.shutdown()

    asyncio.run(main())
    assert calls == ["lifespan"]


def test_a_failing_lifespan_shutdown_does_not_raise() -> None:
    events: list[str] = []

    async def main() -> None:
        lifespan = Lifespan(lifespan_app(events, shutdown="raise"))
        await lifespan.startup()
        await lifespan.shutdown()  # logged: serve still closes its listeners after

    asyncio.run(main())
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.parametrize("fault", ["fails-while-serving", "never-stops"])
def test_lifespan_trouble_after_startup_is_logged_at_shutdown(
    fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        if fault == "fails-while-serving":
            raise RuntimeError("lost its database (on purpose)")
        try:
            await asyncio.sleep(60)  # deaf to lifespan.shutdown
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        lifespan = Lifespan(app)
        await lifespan.startup()
        await asyncio.sleep(0.01)
        await lifespan.shutdown(timeout=0.2)
        await asyncio.sleep(0.01)

    with caplog.at_level("ERROR", logger="selectors_lib.serve"):
        asyncio.run(main())
    expected = "lost its database" if fault == "fails-while-serving" else "did not finish"
    logged = [r.getMessage() for r in caplog.records if r.name == "selectors_lib.serve"]
    assert any(expected in line for line in logged), logged
    assert cancelled == ([] if fault == "fails-while-serving" else [True])
