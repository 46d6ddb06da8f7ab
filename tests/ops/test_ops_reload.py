"""Hot reload: Router.reload semantics and the file-watching FileReloader."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_helpers import config_a, config_b, scrape, value, with_changes
from prometheus_client import CollectorRegistry

from selectors_lib import ConfigError, Criteria, ReloadEvent, Router, load_router
from selectors_lib._reloader import FileReloader
from selectors_lib.prometheus import instrument

HOT = Criteria(execution_id="exec-1", attributes={"x-tenant": "t1"})


def write(path: Path, config: Any) -> None:
    text = yaml.safe_dump(config) if path.suffix == ".yaml" else json.dumps(config)
    path.write_text(text, encoding="utf-8")


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` (a hang guard, not a timing test)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def test_reload_swaps_and_a_failed_reload_keeps_serving() -> None:
    router = load_router(config_a())
    events: list[ReloadEvent] = []
    router.events.subscribe(lambda e: events.append(e) if isinstance(e, ReloadEvent) else None)
    assert router.select(HOT).id in {"r1", "r2", "r3"}
    old = router.config
    broken = with_changes(config_b())
    broken["routes"][0]["match"] = {"application": {"regex": "(unclosed"}}
    broken["routes"][1]["target"]["endpoints"] = ["nope"]
    with pytest.raises(ConfigError) as info:
        router.reload(broken)
    assert router.config is old
    assert router.select(HOT).id in {"r1", "r2", "r3"}
    paths = {issue.path for issue in info.value.issues}
    assert paths == {"routes[0].match.application.regex", "routes[1].target.endpoints[0]"}
    assert [e.ok for e in events] == [False]
    assert events[0].error is not None
    assert "routes[0].match.application.regex" in events[0].error

    router.reload(config_b())
    assert router.select(HOT).id in {"r4", "r5", "r6"}
    assert [e.ok for e in events] == [False, True]


def test_no_cached_decision_survives_a_swap() -> None:
    router = load_router(config_a())
    # Fill the decision cache with answers from config A.
    criteria = [
        Criteria(execution_id=f"e{i}", attributes={"x-tenant": f"t{i % 5}"}) for i in range(200)
    ]
    before = [router.select(c) for c in criteria]
    assert {e.id for e in before} <= {"r1", "r2", "r3"}
    router.reload(config_b())
    after = [router.select(c) for c in criteria]
    assert {e.id for e in after} <= {"r4", "r5", "r6"}
    # Every answer is exactly what a fresh router on config B gives.
    fresh = load_router(config_b())
    assert after == [fresh.select(c) for c in criteria]


def test_health_carries_over_for_surviving_endpoints_only() -> None:
    router = load_router(config_a())
    router.mark_down("r2", reason="probe", detail="timeout")
    router.mark_down("r5")
    # r5 leaves the configuration, r2 stays.
    smaller = config_b()
    smaller["routes"][0]["target"]["endpoints"] = ["r4", "r6"]
    router.reload(smaller)
    assert router.health["r2"].healthy is False
    assert router.health["r2"].reason == "probe"
    assert "r5" not in router.health
    # The surviving ejection still steers traffic: no cold request lands on r2.
    cold = [Criteria(application="app-x", execution_id=f"e{i}") for i in range(100)]
    assert "r2" not in {router.select(c).id for c in cold}
    # r5 comes back healthy: its old ejection does not resurrect.
    router.reload(config_b())
    assert router.health["r5"].healthy is True
    assert router.health["r2"].healthy is False


def test_file_reloader_sees_changes_once_each(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    write(path, config_a())
    router = load_router(path)
    reloader = FileReloader(router, path, interval=0.05)
    assert reloader.check() is False  # the file the router already serves

    write(path, config_b())
    assert reloader.check() is True
    assert router.select(HOT).id in {"r4", "r5", "r6"}
    assert router.config.source == str(path)
    assert reloader.check() is False
    assert (reloader.attempts, reloader.successes, reloader.last_error) == (1, 1, None)


def test_same_size_edit_within_one_mtime_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    first = config_a()
    write(path, first)
    router = load_router(path)
    reloader = FileReloader(router, path)
    stat = path.stat()
    # Same length, same modification time: only the content digest differs.
    second = config_a()
    second["routes"][2]["target"] = "r2"
    write(path, second)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert reloader.check() is True
    assert router.select(Criteria()).id == "r2"


def test_invalid_file_keeps_old_config_logs_paths_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "routes.yaml"
    write(path, config_a())
    router = load_router(path)
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    reloader = FileReloader(router, path)
    served = router.config

    broken = config_b()
    broken["routes"][1]["priority"] = "high"
    write(path, broken)
    with caplog.at_level(logging.ERROR, logger="selectors_lib.reload"):
        assert reloader.check() is True
    assert router.config is served
    assert router.select(HOT).id in {"r1", "r2", "r3"}
    assert isinstance(reloader.last_error, ConfigError)
    assert [i.path for i in reloader.last_error.issues] == ["routes[1].priority"]
    (record,) = caplog.records
    assert "routes[1].priority" in record.getMessage()
    assert str(path) in record.getMessage()
    assert value(scrape(registry), "selectors_config_reloads_total", result="failed") == 1

    # A broken state is tried once, not every poll.
    assert reloader.check() is False
    assert value(scrape(registry), "selectors_config_reloads_total", result="failed") == 1

    # Fixing the file recovers.
    write(path, config_b())
    assert reloader.check() is True
    assert router.select(HOT).id in {"r4", "r5", "r6"}
    assert reloader.last_error is None
    samples = scrape(registry)
    assert value(samples, "selectors_config_reloads_total", result="ok") == 1


def test_missing_file_is_one_failed_reload_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    write(path, config_a())
    router = load_router(path)
    reloader = FileReloader(router, path)
    path.unlink()
    assert reloader.check() is True
    assert isinstance(reloader.last_error, ConfigError)
    assert reloader.check() is False
    assert router.config.default.name == "a-default"
    write(path, config_b())
    assert reloader.check() is True
    assert router.config.default.name == "b-default"


def test_polling_thread_and_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    write(path, config_a())
    router = load_router(path)
    with FileReloader(router, path, interval=0.01) as reloader:
        with pytest.raises(RuntimeError, match="already running"):
            reloader.start()
        write(path, config_b())
        wait_for(lambda: router.config.default.name == "b-default")
        assert router.select(HOT).id in {"r4", "r5", "r6"}
    assert not [t for t in threading.enumerate() if t.name.startswith("selectors-reload")]
    # Stopped: further edits are not picked up.
    write(path, config_a())
    time.sleep(0.05)
    assert router.config.default.name == "b-default"


def test_asyncio_variant(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    write(path, config_a())
    router = load_router(path)

    async def main() -> None:
        async with FileReloader(router, path, interval=0.01):
            write(path, config_b())
            deadline = time.monotonic() + 10
            while router.config.default.name != "b-default":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            # The loop kept serving while the reload ran in a worker thread.
            assert router.select(HOT).id in {"r4", "r5", "r6"}

    asyncio.run(main())


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        FileReloader(Router(load_router(config_a()).config), tmp_path / "x.yaml", interval=0)
