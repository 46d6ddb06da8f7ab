"""The retry policy: what is retried, how often, and the budget that bounds it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from adapters_support import serve_asgi

from selectors_lib import load_router
from selectors_lib.gateway import RetryBudget, SelectorsProxy
from selectors_lib.gateway._retry import Failure, retryable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_its_share_of_retries_plus_a_floor_per_second() -> None:
    clock = Clock()
    budget = RetryBudget(0.25, 2.0, clock=clock)
    # The floor: two retries per second whatever the traffic.
    assert [budget.withdraw() for _ in range(3)] == [True, True, False]
    # Eight requests deposit two retries.
    for _ in range(8):
        budget.deposit()
    assert [budget.withdraw() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert [budget.withdraw() for _ in range(2)] == [True, False]
    # Deposits are capped: a quiet spell does not pay for a storm.
    for _ in range(10_000):
        budget.deposit()
    granted = sum(budget.withdraw() for _ in range(100))
    assert granted == 10


@pytest.mark.parametrize(
    ("kind", "method", "replayable", "expected"),
    [
        (Failure.NOT_SENT, "POST", True, True),
        (Failure.NOT_SENT, "GET", False, False),
        (Failure.RESET, "GET", True, True),
        (Failure.RESET, "POST", True, False),
        (Failure.TIMEOUT, "PUT", True, True),
        (Failure.TIMEOUT, "PATCH", True, False),
        (Failure.PROTOCOL, "GET", True, True),
        (Failure.PROTOCOL, "POST", True, False),
        (Failure.PROTOCOL, "DELETE", False, False),
    ],
)
def test_what_is_retried(kind: str, method: str, replayable: bool, expected: bool) -> None:
    assert retryable(kind, method, replayable) is expected


@contextmanager
def _answering(answer: bytes) -> Iterator[str]:
    """An upstream that reads each request, sends ``answer`` (maybe nothing) and closes."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            if answer:
                conn.sendall(answer)
            conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(10)
        server.close()


@pytest.fixture
def closer() -> Iterator[str]:
    """An upstream that accepts each connection and closes it without a byte."""
    with _answering(b"") as url:
        yield url


def config(first: str, backends: dict[str, str], **gateway: Any) -> dict[str, Any]:
    # Keyless requests take the first live replica in config order: `first`.
    return {
        "endpoints": {"first": first, "ro-2": backends["ro-2"]},
        "routes": [
            {
                "name": "once",
                "match": {"application": "once"},
                "target": {"endpoints": ["first", "ro-2"]},
            },
            {"name": "main", "default": True, "target": {"endpoints": ["first", "ro-2"]}},
        ],
        "gateway": {"outlier": {"enabled": False}, **gateway},
    }


def test_nothing_sent_is_retried_for_any_method_within_the_route_s_tries(
    backends: dict[str, str],
) -> None:
    router = load_router(
        config(backends["dead"], backends, routes={"once": {"retries": {"tries": 1}}})
    )
    with (
        serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        posted = client.post("/p", content=b"x" * 100_000)
        assert (posted.status_code, posted.json()["backend"]) == (200, "ro-2")
        assert posted.json()["body_size"] == 100_000
        # One try on this route: the refused connection is the answer.
        once = client.get("/", headers={"X-Spinnaker-Application": "once"})
        assert once.status_code == 502


def test_a_reset_before_any_byte_is_retried_for_idempotent_methods_only(
    closer: str, backends: dict[str, str]
) -> None:
    router = load_router(config(closer, backends))
    with (
        serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        assert client.get("/g").json()["backend"] == "ro-2"
        assert client.put("/u", content=b"v").json()["backend"] == "ro-2"
        # The closer may have processed a POST: it is not sent again.
        assert client.post("/p", content=b"v").status_code == 502


@pytest.fixture
def stranger() -> Iterator[str]:
    """An upstream that answers each request with something that is not HTTP, then closes.

    As when another program took a dead replica's port (Redis, here).
    """
    with _answering(b"-ERR unknown command 'GET'\r\n") as url:
        yield url


def test_an_answer_that_is_not_http_is_retried_for_idempotent_methods_only(
    stranger: str, backends: dict[str, str]
) -> None:
    router = load_router(config(stranger, backends))
    with (
        serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        # Nothing reached the client: the next replica answers.
        assert client.get("/g").json()["backend"] == "ro-2"
        assert client.delete("/d").json()["backend"] == "ro-2"
        # The stranger may have acted on a POST: it is not repeated.
        assert client.post("/p", content=b"v").status_code == 502
