"""A stateful model of a pool under add/remove/down/up/reload/lookup.

After every step the router's assignment of a fixed key set must be:
- a pure function of (configuration, down set): a fresh router agrees;
- sticky: a key moves only off a replica that left (removed or down), or onto a
  replica that arrived (added or back up), never between two bystanders;
- never on a down replica (panic is kept out of the model by keeping one live).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from selectors_lib import Criteria, Router, load_router

KEYS = [Criteria(authenticated_user=f"user-{i}") for i in range(150)]
NAMES = [f"r{i}" for i in range(8)]


def config(members: list[str], algorithm: str) -> dict[str, Any]:
    return {
        "routes": [
            {
                "name": "pool",
                "default": True,
                "target": {
                    "endpoints": [{"id": m, "url": f"http://{m}.test"} for m in members],
                    "algorithm": algorithm,
                    "hash_on": ["authenticated_user"],
                    "panic_threshold": 0,
                    # A small prime Maglev table keeps the model fast.
                    "options": {"table_size": 1009} if algorithm == "maglev" else {},
                },
            }
        ]
    }


class PoolMachine(RuleBasedStateMachine):
    algorithm = "slots"
    # Envoy's ring and Maglev resize every host's share when membership
    # changes, and jump can only drop the last host: for them only health
    # changes (which walk each key's own failover order) are exactly minimal.
    membership_is_minimal = True

    def __init__(self) -> None:
        super().__init__()
        self.members = ["r0", "r1", "r2"]
        self.down: set[str] = set()
        self.router = load_router(config(self.members, self.algorithm))
        self.before = self.assign()
        self.left: set[str] = set()
        self.arrived: set[str] = set()

    def assign(self) -> dict[Criteria, str]:
        return {c: self.router.select(c).id for c in KEYS}

    def live(self) -> list[str]:
        return [m for m in self.members if m not in self.down]

    @precondition(lambda self: self.membership_is_minimal)
    @rule(name=st.sampled_from(NAMES))
    def add(self, name: str) -> None:
        if name in self.members:
            return
        self.members.append(name)
        self.router.reload(config(self.members, self.algorithm))
        self.arrived = {name}

    @precondition(lambda self: self.membership_is_minimal and len(self.live()) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.live()))
        self.members.remove(name)
        self.router.reload(config(self.members, self.algorithm))
        self.left = {name}

    @precondition(lambda self: len(self.live()) > 1)
    @rule(data=st.data())
    def mark_down(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.live()))
        self.router.mark_down(name, reason="probe")
        self.down.add(name)
        self.left = {name}

    @precondition(lambda self: bool(self.down))
    @rule(data=st.data())
    def mark_up(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.down)))
        self.router.mark_up(name)
        self.down.discard(name)
        self.arrived = {name}

    @rule()
    def reload_unchanged(self) -> None:
        self.router.reload(config(self.members, self.algorithm))

    @rule(index=st.integers(0, len(KEYS) - 1))
    def lookup_is_stable(self, index: int) -> None:
        c = KEYS[index]
        assert len({self.router.select(c) for _ in range(50)}) == 1

    @invariant()
    def sticky_minimal_and_pure(self) -> None:
        after = self.assign()
        for c in KEYS:
            old, new = self.before[c], after[c]
            assert new not in self.down, f"{c} routed to down replica {new}"
            if old != new:
                assert old in self.left or new in self.arrived, (
                    f"{c.authenticated_user} moved {old} -> {new} "
                    f"(left {self.left}, arrived {self.arrived})"
                )
        fresh = Router(self.router.config)
        for name in sorted(self.down):
            fresh.mark_down(name)
        assert {c: fresh.select(c).id for c in KEYS} == after
        self.before, self.left, self.arrived = after, set(), set()


def machine(algorithm: str) -> Any:
    minimal = algorithm in {"slots", "rendezvous"}
    attributes = {"algorithm": algorithm, "membership_is_minimal": minimal}
    return type(f"Pool_{algorithm}", (PoolMachine,), attributes)


@pytest.mark.parametrize("algorithm", ["slots", "rendezvous", "ring", "maglev", "jump"])
def test_pool_state_machine(algorithm: str) -> None:
    state_machine = machine(algorithm)
    state_machine.TestCase.settings = settings(
        max_examples=15, stateful_step_count=15, deadline=None
    )
    state_machine.TestCase().runTest()
