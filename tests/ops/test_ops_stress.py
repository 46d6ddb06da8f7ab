"""Concurrency: selecting from many threads and a loop while config and health churn.

Eight threads and an asyncio loop route continuously while one thread reloads
between two mirror-image configurations 1,000 times and another flaps replica
health 10,000 times (and subscribes/unsubscribes an observer, switching select()
between its cached and its observed path). Every answer is checked:

- always: the (rule, endpoint) pair is one that config A or config B gives
  under some health state. A and B send every request set to disjoint replicas
  under differently named rules, so a torn snapshot (A's rules with B's pools,
  a stale cache entry from the other config) is caught.
- when no swap happened during the call (generation unchanged): the answer is
  exactly the one a fresh router gives for that configuration and health.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ops_helpers import config_a, config_b

from selectors_lib import Criteria, Event, Router, SelectEvent, load_router

pytestmark = pytest.mark.slow

THREADS = 8
RELOADS = 1_000
FLAPS = 10_000
FLAPPED = ("r2", "r5")  # one replica on each side of both configurations

HealthState = frozenset[str]  # ids marked down


def _criteria() -> list[Criteria]:
    out = []
    for i in range(120):
        out.append(
            Criteria(
                application=("App-" if i % 2 else "other-") + str(i % 11),
                execution_id=None if i % 10 == 0 else f"exec-{i}",
                attributes={"x-tenant": f"t{i % 8}"},
            )
        )
    return out


def _states() -> list[HealthState]:
    return [
        frozenset(down)
        for n in range(len(FLAPPED) + 1)
        for down in itertools.combinations(FLAPPED, n)
    ]


def _oracle(
    requests: list[Criteria],
) -> dict[tuple[str, HealthState], dict[Criteria, tuple[str, str]]]:
    """For each (config, health) the exact (rule, endpoint id) of every request."""
    out = {}
    for name, make in (("a", config_a), ("b", config_b)):
        for state in _states():
            router = load_router(make())
            for endpoint_id in sorted(state):
                router.mark_down(endpoint_id)
            out[(name, state)] = {
                c: ((d := router.explain(c)).rule, d.endpoint.id) for c in requests
            }
    return out


class Checker:
    """Validates answers; collects failures instead of raising in workers."""

    def __init__(self, router: Router, requests: list[Criteria]) -> None:
        self.router = router
        self.requests = requests
        self.exact = _oracle(requests)
        self.allowed: dict[Criteria, set[tuple[str, str]]] = {c: set() for c in requests}
        for answers in self.exact.values():
            for c, pair in answers.items():
                self.allowed[c].add(pair)
        self.allowed_pairs = set().union(*self.allowed.values())
        self.failures: list[str] = []
        self.checked = 0
        self.exact_checked = 0
        self.stop = threading.Event()

    def one(self, c: Criteria, explain: bool) -> None:
        router = self.router
        before = router.generation
        config = router.config
        health = router.health
        if explain:
            decision = router.explain(c)
            pair = (decision.rule, decision.endpoint.id)
        else:
            endpoint = router.select(c)
            pair = ("", endpoint.id)
        after = router.generation
        self.checked += 1  # a racy counter: only a rough total
        endpoints = {e for _, e in self.allowed[c]}
        ok = pair in self.allowed[c] if explain else pair[1] in endpoints
        if not ok:
            self.failures.append(f"{pair} for {c!r} is valid under neither config")
        if before == after:
            # No swap during the call: the three reads above saw this snapshot.
            name = config.default.name[0]
            state = frozenset(k for k, h in health.items() if not h.healthy)
            want = self.exact[(name, state)][c]
            got_ok = pair == want if explain else pair[1] == want[1]
            self.exact_checked += 1
            if not got_ok:
                self.failures.append(f"{pair} for {c!r}, expected {want} in gen {before}")

    def observer(self, event: Event) -> None:
        if isinstance(event, SelectEvent) and (event.rule, event.endpoint_id) not in (
            self.allowed_pairs
        ):
            self.failures.append(f"observed {event!r}")

    def worker(self, offset: int) -> None:
        requests = self.requests
        for n in itertools.count(offset):
            if self.stop.is_set():
                return
            self.one(requests[n % len(requests)], explain=n % 5 == 0)


def _run_guarded(errors: list[BaseException], fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    return run


@pytest.fixture
def fast_switching() -> Iterator[None]:
    # Switch threads more often than the 5 ms default: more interleavings per second.
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(old)


@pytest.mark.usefixtures("fast_switching")
def test_no_torn_state_under_reload_and_health_churn() -> None:
    requests = _criteria()
    router = load_router(config_a())
    check = Checker(router, requests)
    errors: list[BaseException] = []
    configs: list[dict[str, Any]] = [config_b(), config_a()]

    def reloader() -> None:
        for i in range(RELOADS):
            router.reload(configs[i % 2])

    def flapper() -> None:
        unsubscribe = None
        for i in range(FLAPS):
            endpoint_id = FLAPPED[(i // 2) % len(FLAPPED)]
            if i % 2 == 0:
                router.mark_down(endpoint_id, reason="probe")
            else:
                router.mark_up(endpoint_id)
            if i % 1_000 == 0:
                # Alternate select() between its cached and its observed path.
                if unsubscribe is None:
                    unsubscribe = router.events.subscribe(check.observer)
                else:
                    unsubscribe()
                    unsubscribe = None
        if unsubscribe is not None:
            unsubscribe()

    async def loop_selectors() -> None:
        async def task(offset: int) -> None:
            for n in itertools.count(offset):
                if check.stop.is_set():
                    return
                check.one(requests[n % len(requests)], explain=n % 3 == 0)
                if n % 20 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(*(task(k * 17) for k in range(4)))

    workers = [
        threading.Thread(target=_run_guarded(errors, lambda k=k: check.worker(k * 31)))
        for k in range(THREADS)
    ]
    writers = [
        threading.Thread(target=_run_guarded(errors, reloader)),
        threading.Thread(target=_run_guarded(errors, flapper)),
    ]
    loop_thread = threading.Thread(
        target=_run_guarded(errors, lambda: asyncio.run(loop_selectors()))
    )
    for thread in (*workers, loop_thread, *writers):
        thread.start()
    for thread in writers:
        thread.join()
    check.stop.set()
    for thread in (*workers, loop_thread):
        thread.join()

    assert errors == []
    assert check.failures[:5] == []
    assert router.generation == RELOADS + FLAPS
    # Ends on config A with everything up, and routes exactly like a fresh router.
    fresh = load_router(config_a())
    assert [router.select(c) for c in requests] == [fresh.select(c) for c in requests]
    assert check.checked > 10_000
    assert check.exact_checked > 1_000
