"""A half-written configuration file is never applied: reloads wait for it to settle.

The writer below does what editors and ``echo > file`` scripts do: truncate the
file, write the first part (a valid configuration on its own: only the default
route), pause, then write the rest (the ``vip`` rule). Without a settle
interval the reloader applied the first part, and vip traffic went to the
default endpoint for as long as the pause lasted.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from selectors_lib import Criteria, FileReloader, load_router

HEAD = (
    "endpoints: {main: 'http://main.test', vip: 'http://vip.test'}\n"
    "routes:\n- {name: all, default: true, target: main}\n"
)
VIP_RULE = "- {name: vip, match: {account: {equals: vip}}, target: vip}\n"
VIP = Criteria(account="vip")
PAUSE = 0.3  # the writer's pause between the two parts, under the default settle (0.5 s)
GUARD = 20.0  # a hang guard, not a timing assertion


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_file_written_in_two_parts_is_applied_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(HEAD + VIP_RULE)
    router = load_router(path)
    reloader = FileReloader(router, path, interval=0.02)
    seen: list[str] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(router.select(VIP).id)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    with reloader:
        sampler.start()
        try:
            for edit in range(2):
                with path.open("r+", encoding="utf-8") as handle:
                    handle.truncate(0)
                    handle.write(f"# edit {edit}\n" + HEAD)
                    handle.flush()
                    os.fsync(handle.fileno())
                    time.sleep(PAUSE)
                    handle.write(VIP_RULE)
                wait_for(lambda e=edit: reloader.successes == e + 1, f"edit {edit} to be applied")
        finally:
            stop.set()
            sampler.join(GUARD)
    assert reloader.attempts == 2, "one reload per whole file, none for a half-written one"
    assert reloader.last_error is None
    assert seen
    assert set(seen) == {"vip"}, "vip traffic never saw the half-written file"
    assert router.config.rules[0].name == "vip"


def test_settle_zero_applies_at_once_and_bad_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(HEAD)
    router = load_router(path)
    reloader = FileReloader(router, path, settle=0)
    path.write_text(HEAD + VIP_RULE)
    assert reloader.check() is True
    assert router.select(VIP).id == "vip"
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="settle"):
            FileReloader(router, path, settle=bad)
