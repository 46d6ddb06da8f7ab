"""Fixtures for the gateway tests: the adapter tests' loopback backends, reused."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The echo backends and the uvicorn runner are shared with tests/adapters.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))

from adapters_support import dead_url, echo_app, routing_config, serve_asgi
from gateway_backends import Backend


@pytest.fixture(scope="session")
def backends() -> Iterator[dict[str, str]]:
    """Two live backends (``ro-1`` under a base path, ``ro-2`` at the root) and a dead one."""
    with serve_asgi(echo_app("ro-1")) as one, serve_asgi(echo_app("ro-2")) as two:
        yield {"ro-1": f"{one}/base", "ro-2": two, "dead": dead_url()}


@pytest.fixture
def config(backends: dict[str, str]) -> dict[str, Any]:
    """A fresh routing configuration over the session's backends."""
    return routing_config(backends)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    """The event loop a test's server runs on: the default one, then uvloop."""
    kind: str = request.param
    return kind


@pytest.fixture
def three() -> Iterator[list[Backend]]:
    """Three live backends (b0, b1, b2) that a test may kill and restart."""
    backends = [Backend(f"b{i}") for i in range(3)]
    try:
        for backend in backends:
            backend.start()
        yield backends
    finally:
        for backend in backends:
            backend.close()
