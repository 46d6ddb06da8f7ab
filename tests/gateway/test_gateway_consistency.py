"""The proxy and consistency tokens: write routes hand out tokens, token reads route by them.

Real pieces: SelectorsProxy under uvicorn with its health monitor, echo
backends on loopback, and a Redis master with two replicas behind stallable
relays (tests/health/health_redis_nodes.py) that the lag probe observes.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from adapters_support import echo_app, serve_asgi

from selectors_lib import HeaderMapping, load_router
from selectors_lib import consistency as ct
from selectors_lib.gateway import SelectorsProxy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "health"))

from health_redis_nodes import RedisSet, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_nodes(tmp_path: Path) -> Iterator[RedisSet]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; CI must install it")
        pytest.skip("redis-server is not installed")
    nodes = RedisSet(binary, tmp_path)
    try:
        wait_for("redis master to accept connections", nodes.master.client.ping)
        nodes.master.client.set("hello", "world")
        wait_for("both replicas in sync", nodes.in_sync)
        yield nodes
    finally:
        nodes.close()


@pytest.fixture
def proxy(redis_nodes: RedisSet) -> Iterator[tuple[str, RedisSet]]:
    with (
        serve_asgi(echo_app("primary")) as primary,
        serve_asgi(echo_app("ro-1")) as one,
        serve_asgi(echo_app("ro-2")) as two,
    ):
        router = load_router(
            {
                "endpoints": {"primary": primary, "ro-1": one, "ro-2": two},
                "routes": [
                    {
                        "name": "writes",
                        "priority": 10,
                        "match": {"attributes": {"x-op": "write"}},
                        "target": "primary",
                    },
                    {
                        "name": "reads",
                        "default": True,
                        "target": {
                            "endpoints": ["ro-1", "ro-2"],
                            "hash_on": ["execution_id"],
                            "consistency": {"fallback": "primary", "max_age": 2.0},
                        },
                    },
                ],
                "health": {
                    "interval": 0.05,
                    "timeout": 0.3,
                    "probes": [
                        {
                            "type": "redis_lag",
                            "name": "store",
                            "master": redis_nodes.master.url,
                            "replicas": {
                                name: node.url for name, node in redis_nodes.replicas.items()
                            },
                            "max_lag_bytes": 1 << 40,
                        }
                    ],
                },
                "gateway": {
                    "token_cookie": True,
                    "routes": {"writes": {"write_token": redis_nodes.master.url}},
                },
            }
        )
        app = SelectorsProxy(router, mapping=HeaderMapping(attributes=("x-op",)))
        with serve_asgi(app, lifespan="on", proxy=True) as url:
            wait_for("replica positions", lambda: len(router.positions) == 2)
            yield url, redis_nodes


def test_write_route_returns_a_token_and_reads_honour_it(
    proxy: tuple[str, RedisSet],
) -> None:
    url, nodes = proxy
    for name in nodes.replicas:
        nodes.proxy[name].stall()
    nodes.master.client.set("prime", "x")  # the relays pass one more chunk after a stall
    time.sleep(0.1)
    with httpx.Client(base_url=url, timeout=10) as client:
        nodes.master.client.set("order:1", "placed")  # what the upstream's write did
        written = client.post("/orders", headers={"x-op": "write"}, content=b"{}")
        assert written.json()["backend"] == "primary"
        token = ct.Token.parse(written.headers[ct.TOKEN_HEADER])
        assert token is not None
        assert token.offset >= ct.after_write(nodes.master.client).offset - 100
        assert ct.TOKEN_COOKIE in written.cookies
        # The client still holds the cookie: drop it to test the header alone first.
        client.cookies.clear()
        execution = {"x-spinnaker-execution-id": "exec-1"}
        plain = client.get("/orders/1", headers=execution).json()["backend"]
        assert plain in ("ro-1", "ro-2")
        with_header = {**execution, ct.TOKEN_HEADER: str(token)}
        assert client.get("/orders/1", headers=with_header).json()["backend"] == "primary"
        client.cookies.set(ct.TOKEN_COOKIE, str(token))
        assert client.get("/orders/1", headers=execution).json()["backend"] == "primary"
        for name in nodes.replicas:
            nodes.proxy[name].resume()
        wait_for(
            "the key's own replica serves token reads again",
            lambda: client.get("/orders/1", headers=with_header).json()["backend"] == plain,
        )
        assert client.get("/orders/1", headers=execution).json()["backend"] == plain
