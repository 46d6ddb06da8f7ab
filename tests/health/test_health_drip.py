"""A backend that drips its answer one byte at a time must fail alone, at ``timeout``.

A per-read socket timeout never fires against such a backend (every read gets a
byte in time), so without a total deadline its check never ends: the threaded
monitor then failed every endpoint of the probe (and reported master churn),
and the asyncio one piled threads into the loop's default executor until the
loop's own DNS lookups stalled. These tests run a real drip-feeding server next
to real healthy ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from health_http_servers import Backend

from selectors_lib import Criteria, Router, load_router
from selectors_lib.health import HealthMonitor, HttpProbe, HttpProbeSettings, ProbeResult

WAIT = 30.0
TIMEOUT = 0.3
DRIP_EVERY = 0.05  # well under TIMEOUT: every single read gets its byte in time
APPS = tuple(Criteria(application=f"app{i}") for i in range(60))


def wait_for(what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for: {what}")
        time.sleep(0.01)


def bounded(what: str, call: Callable[[], ProbeResult], timeout: float = WAIT) -> ProbeResult:
    """``call()`` from another thread, failing the test if it does not return in time."""
    results: list[ProbeResult] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    if not results:
        pytest.fail(f"{what} did not return within {timeout:g}s")
    return results[0]


def run_loop(scenario: Callable[[], Coroutine[None, None, None]]) -> None:
    """``asyncio.run(scenario())`` in another thread, bounded: the scenario and then the
    loop's shutdown (which waits for the threads of its default executor)."""
    errors: list[BaseException] = []
    finished = threading.Event()

    async def main() -> None:
        try:
            await scenario()
        except BaseException as exc:
            errors.append(exc)
        finally:
            finished.set()

    def target() -> None:
        with contextlib.suppress(BaseException):  # reported through `errors`
            asyncio.run(main())

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    if not finished.wait(WAIT * 2):
        pytest.fail(f"the asyncio scenario did not finish within {WAIT * 2:g}s")
    if errors:
        raise errors[0]
    thread.join(WAIT)
    if thread.is_alive():
        pytest.fail(
            f"asyncio.run did not return within {WAIT:g}s of the scenario's end: "
            "probe threads are stuck in the loop's default executor"
        )


class DripServer:
    """Accepts connections and answers each with a status line it never finishes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = 0
        self.hangups = 0  # connections the client closed while being dripped to
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with self.lock:
                self.accepted += 1
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _drip(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 60_000
        with conn:
            conn.settimeout(WAIT)
            try:
                conn.recv(65536)  # the request
                for byte in answer:
                    if self.stop.wait(DRIP_EVERY):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                with self.lock:
                    self.hangups += 1

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.acceptor.join(WAIT)
        for thread in self.threads:
            thread.join(WAIT)


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def good() -> Iterator[list[Backend]]:
    servers = [Backend(), Backend()]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def make_router(good: list[Backend], drip: DripServer) -> Router:
    ids = ["good-1", "good-2", "slow"]
    return load_router(
        {
            "endpoints": {"good-1": good[0].url, "good-2": good[1].url, "slow": drip.url},
            "routes": [
                {
                    "name": "api",
                    "default": True,
                    "target": {"endpoints": ids, "hash_on": ["application"]},
                }
            ],
            "health": {
                "interval": 0.05,
                "timeout": TIMEOUT,
                "eject_after": 2,
                "readmit_after": 1,
                "probes": [{"type": "http", "name": "http-0", "endpoints": ids}],
            },
        }
    )


def assert_only_slow_is_out(router: Router, monitor: HealthMonitor, before: dict[str, str]) -> None:
    health = router.health
    assert (health["slow"].healthy, health["slow"].reason) == (False, "probe")
    # The request itself gave up at its deadline (not the wait for its thread).
    assert "no complete answer within 0.3s" in health["slow"].detail, health["slow"]
    assert health["good-1"].healthy, health["good-1"]
    assert health["good-2"].healthy, health["good-2"]
    assert monitor.status.churning == ()
    assert monitor.status.endpoint("good-1").healthy
    after = {c.application or "": router.select(c).id for c in APPS}
    # Only the slow endpoint's keys moved; the healthy ones kept theirs.
    assert {app: e for app, e in after.items() if before[app] != "slow"} == {
        app: e for app, e in before.items() if e != "slow"
    }
    assert set(after.values()) == {"good-1", "good-2"}
    assert not any(router.explain(c).panic for c in APPS)


def test_probe_gives_up_on_a_drip_feeding_backend_at_its_deadline(
    good: list[Backend], drip: DripServer
) -> None:
    probe = HttpProbe(
        HttpProbeSettings(
            "h", (("good-1", good[0].url), ("slow", drip.url), ("good-2", good[1].url))
        )
    )
    try:
        result = dict(bounded("probe.check", lambda: probe.check(TIMEOUT)).observations)
        assert result["good-1"].ok, result
        assert result["good-2"].ok, result
        slow = result["slow"]
        assert (slow.ok, slow.reason) == (False, "probe")
        assert "timed out: no complete answer within 0.3s" in slow.detail, slow
        # The probe hung up: its thread is free again, nothing piles up.
        wait_for("the probe to hang up on the drip-feeding backend", lambda: drip.hangups >= 1)
        second = dict(bounded("probe.check", lambda: probe.check(TIMEOUT)).observations)
        assert "no complete answer" in second["slow"].detail, second
        assert drip.accepted == 2, "a new request each round, after the previous one ended"
    finally:
        probe.close()


def test_threaded_monitor_ejects_only_the_drip_feeding_backend(
    good: list[Backend], drip: DripServer, caplog: pytest.LogCaptureFixture
) -> None:
    router = make_router(good, drip)
    before = {c.application or "": router.select(c).id for c in APPS}
    assert set(before.values()) == {"good-1", "good-2", "slow"}
    monitor = HealthMonitor.from_router(router)
    with caplog.at_level(logging.INFO, logger="selectors_lib.health"), monitor:
        wait_for("slow ejected", lambda: not router.health["slow"].healthy)
        rounds = monitor.status.rounds
        wait_for("three more rounds", lambda: monitor.status.rounds >= rounds + 3)
        hits = (len(good[0].paths), len(good[1].paths))
        wait_for(
            "the healthy backends to keep being probed",
            lambda: len(good[0].paths) > hits[0] and len(good[1].paths) > hits[1],
        )
        assert_only_slow_is_out(router, monitor, before)
    assert "churn" not in caplog.text
    assert "still running" not in monitor.status.endpoint("good-1").detail


def test_asyncio_monitor_ejects_only_the_drip_feeding_backend_and_the_loop_resolves(
    good: list[Backend], drip: DripServer, caplog: pytest.LogCaptureFixture
) -> None:
    router = make_router(good, drip)
    before = {c.application or "": router.select(c).id for c in APPS}
    monitor = HealthMonitor.from_router(router)

    async def resolve(loop: asyncio.AbstractEventLoop) -> None:
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo("localhost", 80), WAIT)
        except TimeoutError:
            pytest.fail(
                f"loop.getaddrinfo('localhost') got no answer within {WAIT:g}s: "
                "the loop's default executor is saturated by probe threads"
            )
        assert infos

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        # A small default executor, so probe work leaking into it would starve it fast.
        default = ThreadPoolExecutor(max_workers=2, thread_name_prefix="default")
        loop.set_default_executor(default)
        async with monitor:
            deadline = loop.time() + WAIT
            while router.health["slow"].healthy:
                if loop.time() > deadline:
                    pytest.fail(f"slow not ejected within {WAIT:g}s")
                await asyncio.sleep(0.01)
            rounds = monitor.status.rounds
            while monitor.status.rounds < rounds + 5:
                if loop.time() > deadline:
                    pytest.fail(f"five more rounds did not run within {WAIT:g}s")
                await asyncio.sleep(0.01)
            # The loop's own DNS lookups still get threads...
            await resolve(loop)
            # ...while the slow backend is being probed, round after round.
            assert drip.accepted >= 3
            assert_only_slow_is_out(router, monitor, before)

    with caplog.at_level(logging.INFO, logger="selectors_lib.health"):
        run_loop(scenario)
    assert "churn" not in caplog.text
