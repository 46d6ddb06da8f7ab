"""Fixtures for the health tests: real Redis processes (see ``health_redis_nodes``).

``redis-server`` missing skips the Redis tests locally and fails them on CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from health_fleet_support import StoreNode
from health_redis_nodes import RedisSet, wait_for


@pytest.fixture
def redis_server_bin() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(
                "redis-server is not installed; CI must install it (apt-get install -y redis-server)"
            )
        pytest.skip("redis-server is not installed")
    return binary


@pytest.fixture
def redis_set(redis_server_bin: str, tmp_path: Path) -> Iterator[RedisSet]:
    """A running master and two in-sync replicas, stopped afterwards whatever happens."""
    nodes = RedisSet(redis_server_bin, tmp_path)
    try:
        wait_for("redis master to accept connections", nodes.master.client.ping)
        nodes.master.client.set("hello", "world")
        wait_for("both replicas in sync with the master", nodes.in_sync)
        yield nodes
    finally:
        nodes.close()


@pytest.fixture
def fleet_store(redis_server_bin: str, tmp_path: Path) -> Iterator[StoreNode]:
    """A redis-server for a fleet's shared health plane, restartable on its port."""
    node = StoreNode(redis_server_bin, tmp_path / "store")
    try:
        yield node
    finally:
        node.stop()
