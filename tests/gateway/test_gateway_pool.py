"""A pool per endpoint: its limit, the queue in front of it, and a free slot never lost."""

from __future__ import annotations

import asyncio

import pytest

from selectors_lib.gateway._messages import UpstreamTarget
from selectors_lib.gateway._pool import ConnectFailed, EndpointPool, PoolFull


async def idle_server() -> tuple[asyncio.Server, str]:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The pool only counts connections: closing at once is as good.
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_the_limit_holds_and_a_released_slot_goes_to_the_next_in_line() -> None:
    async def main() -> None:
        server, url = await idle_server()
        pool = EndpointPool(UpstreamTarget(url), limit=2, keepalive=30)
        first = await pool.acquire(5)
        second = await pool.acquire(5)
        assert pool.open == 2
        with pytest.raises(PoolFull):
            await pool.acquire(0.05)
        # Two wait in line; the first is cancelled (its client left) just
        # after being woken: the slot must go to the second, not be lost.
        waiting = asyncio.ensure_future(pool.acquire(5))
        behind = asyncio.ensure_future(pool.acquire(5))
        await asyncio.sleep(0.01)
        pool.release(first)  # not reusable (no exchange): closed, slot freed
        waiting.cancel()
        third = await asyncio.wait_for(behind, 5)
        assert pool.open == 2
        pool.release(second)
        pool.release(third)
        assert pool.open == 0
        pool.close()
        with pytest.raises(ConnectFailed):
            await pool.acquire(1)
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # let the closed transports finish

    asyncio.run(main())


def test_a_refused_connection_frees_its_slot() -> None:
    async def main() -> None:
        server, url = await idle_server()
        server.close()
        await server.wait_closed()
        pool = EndpointPool(UpstreamTarget(url), limit=1, keepalive=30)
        for _ in range(3):
            with pytest.raises(ConnectFailed):
                await pool.acquire(1)
        assert pool.open == 0

    asyncio.run(main())


def test_deadlines_fail_late_waits_within_a_tick_and_forget_finished_ones() -> None:
    from selectors_lib.gateway._upstream import Deadlines

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop)
        late, done, later = loop.create_future(), loop.create_future(), loop.create_future()
        start = loop.time()
        deadlines.add(late, 0.05)
        deadlines.add(done, 0.05)
        deadlines.add(later, 0.5)
        done.set_result(None)
        deadlines.discard(done)
        with pytest.raises(TimeoutError):
            await late
        assert loop.time() - start >= 0.05  # never early
        assert not later.done()  # its own deadline is still ahead
        deadlines.discard(later)
        later.cancel()
        await asyncio.sleep(3 * Deadlines.TICK)
        assert deadlines._timer is None  # no waits, no ticking

    asyncio.run(scenario())


def test_requests_of_one_turn_go_out_together_after_it_and_a_lost_one_stays_unsent() -> None:
    from selectors_lib.gateway._turn import TurnEnd
    from selectors_lib.gateway._upstream import Connection, UpstreamClosed

    written: list[tuple[str, bytes]] = []

    class Transport:
        def __init__(self, name: str) -> None:
            self.name = name

        def write(self, data: bytes) -> None:
            written.append((self.name, data))

        def is_closing(self) -> bool:
            return False

        def close(self) -> None:
            pass

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        turn_end = TurnEnd(loop)
        one, two, lost = (Connection(loop, turn_end=turn_end) for _ in range(3))
        for conn, name in ((one, "one"), (two, "two"), (lost, "lost")):
            conn.connection_made(Transport(name))  # type: ignore[arg-type]
            conn.start(b"GET /" + name.encode() + b" HTTP/1.1\r\n\r\n", b"", head_only=False)
        lost.connection_lost(None)  # the upstream went before the turn ended
        assert written == []
        assert one.unsent
        await asyncio.sleep(0)
        assert written == [
            ("one", b"GET /one HTTP/1.1\r\n\r\n"),
            ("two", b"GET /two HTTP/1.1\r\n\r\n"),
        ]
        assert not one.unsent
        assert not two.unsent
        assert lost.unsent
        assert isinstance(lost.error, UpstreamClosed)

    asyncio.run(scenario())
