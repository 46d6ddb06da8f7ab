"""Fixtures of the Spinnaker tests: the JDK oracle (one JVM per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from java_oracle import Oracle


@pytest.fixture(scope="session")
def jdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    """The JDK oracle; skips without a JDK locally, fails without one under CI."""
    oracle = Oracle(tmp_path_factory.mktemp("oracle"))
    yield oracle
    oracle.close()
