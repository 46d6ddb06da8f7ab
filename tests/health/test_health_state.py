"""Hysteresis, pins and panic: explicit sequences and a stateful model (fake clock, no timing)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from selectors_lib import Criteria, Event, HealthEvent, Router, load_router
from selectors_lib.health import (
    HealthMonitor,
    HealthSettings,
    HealthTracker,
    Observation,
    Policy,
    ProbeResult,
)

GOOD = Observation(True, detail="0 bytes behind", lag_bytes=0)
BAD = Observation(False, "lag", "9000 bytes behind", lag_bytes=9000)
NONE = Observation(None, detail="master unreadable")


def run(tracker: HealthTracker, seq: str, endpoint: str = "a") -> list[bool]:
    """Feed ``seq`` (g=good, b=bad, n=no verdict); return healthy after each step."""
    out = []
    for t, c in enumerate(seq):
        obs = {"g": GOOD, "b": BAD, "n": NONE}[c]
        tracker.observe_round({"grp": {endpoint: obs}}, float(t))
        out.append(tracker.state(endpoint).healthy)
    return out


def test_eject_after_n_bad_in_a_row_readmit_after_m_good() -> None:
    tracker = HealthTracker(Policy(eject_after=3, readmit_after=2))
    assert run(tracker, "bbgbbb" + "gbgg") == [
        *(True, True, True, True, True, False),  # a good one in between restarts the count
        *(False, False, False, True),  # flapping stays out; two good in a row come back
    ]
    state = tracker.state("a")
    assert state.since == 9.0
    assert state.reason is None


def test_no_verdict_changes_nothing_and_breaks_no_streak() -> None:
    tracker = HealthTracker(Policy(eject_after=2, readmit_after=2))
    assert run(tracker, "bnb" + "nnnn" + "gng") == [True] * 2 + [False] * 7 + [True]


def test_ejection_records_reason_detail_and_time() -> None:
    tracker = HealthTracker(Policy(eject_after=1, readmit_after=1))
    result = tracker.observe_round({"grp": {"a": BAD}}, 42.0)
    ((endpoint, state),) = result.changed
    assert endpoint == "a"
    assert state.to_health().healthy is False
    assert (state.reason, state.detail, state.since, state.lag_bytes) == (
        "lag",
        "9000 bytes behind",
        42.0,
        9000,
    )


def test_pinned_endpoint_is_never_readmitted_by_observations() -> None:
    tracker = HealthTracker(Policy(eject_after=1, readmit_after=1))
    assert tracker.pin("a", 1.0) is True
    assert run(tracker, "gggg") == [False] * 4
    assert tracker.unpin("a", 9.0) is True
    assert tracker.state("a").healthy
    assert tracker.state("a").since == 9.0


def test_churn_needs_every_replica_of_the_group_bad() -> None:
    tracker = HealthTracker(Policy(eject_after=1, readmit_after=1))
    first = tracker.observe_round({"cache": {"a": BAD, "b": BAD}, "api": {"c": BAD}}, 1.0)
    assert first.churning == ("cache",)  # one-member groups never churn
    assert first.churn_started == ("cache",)
    second = tracker.observe_round({"cache": {"a": BAD, "b": NONE}}, 2.0)
    assert (second.churning, second.churn_ended) == ((), ("cache",))


def test_endpoint_in_two_groups_counts_once_per_round_and_bad_wins() -> None:
    tracker = HealthTracker(Policy(eject_after=2, readmit_after=1))
    tracker.observe_round({"lag": {"a": BAD}, "http": {"a": GOOD}}, 1.0)
    assert tracker.state("a").bad_streak == 1
    assert tracker.state("a").healthy
    tracker.observe_round({"lag": {"a": BAD}, "http": {"a": BAD}}, 2.0)
    assert not tracker.state("a").healthy


def test_policy_rejects_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Policy(eject_after=0)


# -- the monitor over a router, with a fake probe and a fake clock --------------------------


class FakeProbe:
    """A probe whose next answer the test sets."""

    measures_lag = True

    def __init__(self, name: str, endpoint_ids: tuple[str, ...]) -> None:
        self.name = name
        self.endpoint_ids = endpoint_ids
        self.next = ProbeResult(tuple((e, GOOD) for e in endpoint_ids), True)
        self.closed = False

    def check(self, timeout: float) -> ProbeResult:
        return self.next

    async def acheck(self, timeout: float) -> ProbeResult:
        return self.next

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def pool_router(ids: list[str], panic_threshold: float) -> Router:
    return load_router(
        {
            "endpoints": {e: f"http://{e}.internal:7002" for e in ids},
            "routes": [
                {
                    "name": "reads",
                    "default": True,
                    "target": {
                        "endpoints": ids,
                        "hash_on": ["authenticated_user"],
                        "panic_threshold": panic_threshold,
                    },
                }
            ],
        }
    )


USERS = tuple(Criteria(authenticated_user=f"u{i}") for i in range(24))
VERDICT = {True: GOOD, False: BAD, None: NONE}


class MonitorMachine(RuleBasedStateMachine):
    """Random rounds of observations and operator actions against a real router.

    Checks, after every step: hysteresis (what ejects and readmits, and only
    that), operator ejections are never undone by probes, the panic rule
    (Envoy's), churn reporting, and the times of changes (from the fake clock).
    """

    @initialize(
        size=st.integers(2, 4),
        eject_after=st.integers(1, 4),
        readmit_after=st.integers(1, 4),
        threshold=st.sampled_from([0.0, 0.34, 0.5, 0.75, 1.0]),
    )
    def setup(self, size: int, eject_after: int, readmit_after: int, threshold: float) -> None:
        self.ids = [f"r{i}" for i in range(size)]
        self.n, self.m, self.threshold = eject_after, readmit_after, threshold
        self.router = pool_router(self.ids, threshold)
        self.probe = FakeProbe("grp", tuple(self.ids))
        self.now = 1000.0
        self.monitor = HealthMonitor(
            self.router,
            HealthSettings(eject_after=eject_after, readmit_after=readmit_after),
            probes=[self.probe],
            clock=lambda: self.now,
        )
        self.events: list[Event] = []
        self.router.events.subscribe(self.events.append)
        self.history: dict[str, list[bool]] = {e: [] for e in self.ids}  # verdicts ever
        self.since_up: dict[str, list[bool]] = {e: [] for e in self.ids}  # since operator mark_up
        self.manual: dict[str, bool] = dict.fromkeys(self.ids, False)
        self.last_round: list[bool | None] = []

    def teardown(self) -> None:
        monitor = getattr(self, "monitor", None)
        if monitor is not None:
            monitor.close()

    @rule(verdicts=st.data())
    def probe_round(self, verdicts: st.DataObject) -> None:
        row: list[bool | None] = verdicts.draw(
            st.lists(
                st.sampled_from([True, False, None]), min_size=len(self.ids), max_size=len(self.ids)
            )
        )
        self.now += 1.0
        self.probe.next = ProbeResult(
            tuple((e, VERDICT[v]) for e, v in zip(self.ids, row, strict=True)), True
        )
        self.events.clear()
        self.monitor.run_once()
        for endpoint_id, v in zip(self.ids, row, strict=True):
            if v is not None:
                self.history[endpoint_id].append(v)
                self.since_up[endpoint_id].append(v)
        self.last_round = row
        for event in self.events:
            if not isinstance(event, HealthEvent):
                continue
            assert event.at == self.now, "a change is stamped with the round's time"
            past = self.history[event.endpoint_id]
            if event.healthy:
                assert len(past) >= self.m, past
                assert past[-self.m :] == [True] * self.m, past
            else:
                assert event.reason == "lag"
                assert len(past) >= self.n, past
                assert past[-self.n :] == [False] * self.n, past
            assert not self.manual[event.endpoint_id], "probes never touch an operator's ejection"

    @rule(index=st.integers(0, 3))
    def operator_ejects(self, index: int) -> None:
        endpoint_id = self.ids[index % len(self.ids)]
        self.router.mark_down(endpoint_id, reason="manual", detail="maintenance")
        self.manual[endpoint_id] = True

    @precondition(lambda self: any(self.manual.values()) or self.ejected())
    @rule(index=st.integers(0, 3))
    def operator_readmits(self, index: int) -> None:
        endpoint_id = self.ids[index % len(self.ids)]
        self.router.mark_up(endpoint_id)
        self.manual[endpoint_id] = False
        self.since_up[endpoint_id] = []

    def ejected(self) -> bool:
        return any(not h.healthy for h in self.router.health.values())

    @invariant()
    def health_follows_hysteresis_and_operators(self) -> None:
        health = self.router.health
        for endpoint_id in self.ids:
            h = health[endpoint_id]
            recent = self.since_up[endpoint_id]
            if self.manual[endpoint_id]:
                assert (h.healthy, h.reason) == (False, "manual")
            elif len(recent) >= self.n and recent[-self.n :] == [False] * self.n:
                assert (h.healthy, h.reason) == (False, "lag")
            elif len(recent) >= self.m and recent[-self.m :] == [True] * self.m:
                assert h.healthy
            elif not recent:
                assert h.healthy, "an operator's readmission gives a fresh start"

    @invariant()
    def panic_rule(self) -> None:
        health = self.router.health
        live = sum(h.healthy for h in health.values())
        total = len(self.ids)
        panic = live < total and (live == 0 or live < self.threshold * total)
        for criteria in USERS:
            decision = self.router.explain(criteria)
            assert decision.panic == panic
            if panic:
                assert decision.endpoint == decision.first_choice, "keys stay put in panic"
            else:
                assert health[decision.endpoint.id].healthy
            assert self.router.select(criteria) == decision.endpoint

    @invariant()
    def churn_reported(self) -> None:
        if not self.last_round:
            return
        churn = all(v is False for v in self.last_round)
        assert self.monitor.status.churning == (("grp",) if churn else ())


MonitorMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMonitorMachine = MonitorMachine.TestCase


def test_operator_readmission_restarts_the_count() -> None:
    router = pool_router(["a", "b"], 0.5)
    probe = FakeProbe("grp", ("a", "b"))
    monitor = HealthMonitor(router, HealthSettings(eject_after=2, readmit_after=1), probes=[probe])
    probe.next = ProbeResult((("a", BAD), ("b", GOOD)))
    monitor.run_once()
    monitor.run_once()
    assert router.health["a"].reason == "lag"
    router.mark_up("a", detail="I checked it")
    monitor.run_once()  # one bad observation after the readmission: not enough
    assert router.health["a"].healthy
    monitor.run_once()
    assert not router.health["a"].healthy
    monitor.close()
    assert probe.closed


def test_probe_ejection_overridden_by_manual_stays_manual() -> None:
    router = pool_router(["a", "b"], 0.5)
    probe = FakeProbe("grp", ("a", "b"))
    monitor = HealthMonitor(router, HealthSettings(eject_after=1, readmit_after=1), probes=[probe])
    probe.next = ProbeResult((("a", BAD), ("b", GOOD)))
    monitor.run_once()
    router.mark_down("a", reason="manual")
    probe.next = ProbeResult((("a", GOOD), ("b", GOOD)))
    for _ in range(3):
        monitor.run_once()
    assert (router.health["a"].healthy, router.health["a"].reason) == (False, "manual")
    assert monitor.status.endpoint("a").pinned


def test_churn_only_in_the_groups_that_can_churn() -> None:
    tracker = HealthTracker(Policy(eject_after=1, readmit_after=1))
    both_bad = {"cache": {"a": BAD, "b": BAD}, "http": {"c": BAD, "d": BAD}}
    result = tracker.observe_round(both_bad, 1.0, churn_groups={"cache"})
    assert (result.churning, result.churn_started) == (("cache",), ("cache",))
    assert not tracker.state("c").healthy, "no churn, but ejected all the same"
