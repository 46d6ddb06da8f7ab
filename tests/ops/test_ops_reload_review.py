"""Reloader regressions found by the review (each test reproduced a defect)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from selectors_lib import FileReloader, load_router

BASE = (
    "endpoints: {main: 'http://main.test'}\nroutes:\n- {name: all, default: true, target: main}\n"
)


def test_a_file_that_never_settles_is_not_applied_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A writer that rewrites the file more often than `settle` (a sidecar
    # stamping it, a tight loop) keeps it from ever being applied: that must be
    # visible in the log, once, not a silent stall.
    path = tmp_path / "routes.yaml"
    path.write_text(BASE)
    router = load_router(path)
    reloader = FileReloader(router, path, interval=1.0, settle=0.25)
    stop, started = threading.Event(), threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            path.write_text(f"# stamp {n}\n" + BASE)
            started.set()
            time.sleep(0.01)

    writer = threading.Thread(target=rewrite, daemon=True)
    caplog.set_level(logging.WARNING, "selectors_lib.reload")
    writer.start()
    started.wait(10)
    try:
        assert reloader.check() is False
        assert reloader.check() is False  # still changing: not reported again
    finally:
        stop.set()
        writer.join(10)
    assert reloader.attempts == 0
    warnings = [r.getMessage() for r in caplog.records if "keeps changing" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "atomic rename" in warnings[0]
    # Once it stops changing, it is applied (and a later storm is reported again).
    assert reloader.check() is True
    assert reloader.successes == 1


def test_leaving_the_asyncio_reloader_mid_settle_reloads_nothing_afterwards(
    tmp_path: Path,
) -> None:
    # The check runs in a worker thread; cancelling the task used to leave it
    # waiting for the file to settle, and then reloading the router after
    # `async with` had returned (asyncio.run also waited for it on shutdown).
    path = tmp_path / "routes.yaml"
    path.write_text(BASE)
    router = load_router(path)
    reloader = FileReloader(router, path, interval=0.01, settle=0.8)

    async def scenario() -> None:
        async with reloader:
            path.write_text("# edited\n" + BASE)  # fresh: the check waits for it to settle
            await asyncio.sleep(0.2)

    asyncio.run(scenario())
    generation = router.generation
    time.sleep(1.0)  # past the settle period the check was waiting out
    assert reloader.attempts == 0
    assert router.generation == generation
    assert not [t for t in threading.enumerate() if t.name.startswith("asyncio_")]
