"""Rule semantics, pools, health and decisions through the public API."""

from __future__ import annotations

from typing import Any

import pytest

from selectors_lib import (
    ConfigError,
    Criteria,
    Endpoint,
    HealthEvent,
    NoEndpointError,
    ReloadEvent,
    Router,
    SelectEvent,
    load_router,
)


def config(*routes: dict[str, Any], default: Any = "dflt") -> dict[str, Any]:
    return {
        "endpoints": {
            "a": "http://a.test",
            "b": "http://b.test",
            "c": "http://c.test",
            "dflt": "http://default.test",
        },
        "routes": [*routes, {"name": "default", "default": True, "target": default}],
    }


POOL = {"endpoints": ["a", "b", "c"], "hash_on": ["authenticated_user", "application"]}


class TestPriority:
    def test_highest_priority_wins(self) -> None:
        router = load_router(
            config(
                {"name": "low", "priority": 1, "match": {"application": "x"}, "target": "a"},
                {"name": "high", "priority": 5, "match": {"application": "x"}, "target": "b"},
            )
        )
        assert router.select(Criteria(application="x")).id == "b"

    def test_negative_priorities_order_too(self) -> None:
        router = load_router(
            config(
                {"name": "neg", "priority": -5, "match": {"origin": "deck"}, "target": "a"},
                {"name": "less-neg", "priority": -1, "match": {"origin": "deck"}, "target": "b"},
            )
        )
        assert router.select(Criteria(origin="deck")).id == "b"

    def test_ties_go_to_the_rule_declared_first(self) -> None:
        router = load_router(
            config(
                {"name": "first", "priority": 3, "match": {"origin": "deck"}, "target": "a"},
                {"name": "second", "priority": 3, "match": {"origin": "deck"}, "target": "b"},
            )
        )
        assert router.select(Criteria(origin="deck")).id == "a"
        assert router.explain(Criteria(origin="deck")).rule == "first"

    def test_default_takes_what_nothing_matches(self) -> None:
        router = load_router(
            config({"name": "ui", "priority": 1, "match": {"origin": "deck"}, "target": "a"})
        )
        decision = router.explain(Criteria(origin="api"))
        assert decision.endpoint.id == "dflt"
        assert decision.default
        assert decision.priority is None

    def test_default_priority_is_zero(self) -> None:
        router = load_router(
            config(
                {"name": "unset", "match": {"origin": "deck"}, "target": "a"},
                {"name": "one", "priority": 1, "match": {"origin": "deck"}, "target": "b"},
            )
        )
        assert router.select(Criteria(origin="deck")).id == "b"


class TestExplain:
    def test_every_rule_is_traced_in_the_order_tried(self) -> None:
        router = load_router(
            config(
                {"name": "ui", "priority": 1, "match": {"origin": "deck"}, "target": "a"},
                {"name": "app", "priority": 9, "match": {"application": "x"}, "target": "b"},
            )
        )
        decision = router.explain(Criteria(origin="deck", application="y"))
        assert [(t.name, t.matched, t.won) for t in decision.considered] == [
            ("app", False, False),
            ("ui", True, True),
            ("default", False, False),
        ]
        assert decision.considered[0].reason == "application 'y' does not match = 'x'"
        assert decision.considered[1].reason == "origin 'deck' matches = 'deck'"
        assert "ui" in str(decision)
        assert decision.to_dict()["rule"] == "ui"

    def test_outranked_matches_say_so(self) -> None:
        router = load_router(
            config(
                {"name": "ui", "priority": 1, "match": {"origin": "deck"}, "target": "a"},
                {"name": "app", "priority": 9, "match": {"application": "x"}, "target": "b"},
            )
        )
        decision = router.explain(Criteria(origin="deck", application="x"))
        ui = next(t for t in decision.considered if t.name == "ui")
        assert ui.matched
        assert not ui.won
        assert "outranked by 'app'" in ui.reason

    def test_select_agrees_with_explain(self) -> None:
        router = load_router(config(default=POOL))
        for user in ("alice", "bob", "carol", "dave"):
            criteria = Criteria(authenticated_user=user)
            assert router.select(criteria) == router.explain(criteria).endpoint


class TestPools:
    def test_key_comes_from_the_first_present_source(self) -> None:
        router = load_router(config(default=POOL))
        decision = router.explain(Criteria(application="app1"))
        assert decision.key == "app1"
        assert decision.key_source == "application"
        decision = router.explain(Criteria(authenticated_user="alice", application="app1"))
        assert (decision.key, decision.key_source) == ("alice", "authenticated_user")

    def test_empty_values_are_not_keys(self) -> None:
        router = load_router(config(default=POOL))
        decision = router.explain(Criteria(authenticated_user="", application="app1"))
        assert decision.key_source == "application"

    def test_same_key_same_replica_from_any_other_field(self) -> None:
        router = load_router(config(default=POOL))
        chosen = {router.select(Criteria(authenticated_user="alice", origin=o)) for o in "xyz"}
        assert len(chosen) == 1

    def test_keys_spread_over_the_pool(self) -> None:
        router = load_router(config(default=POOL))
        used = {router.select(Criteria(authenticated_user=f"user{i}")).id for i in range(200)}
        assert used == {"a", "b", "c"}

    def test_missing_key_first(self) -> None:
        router = load_router(config(default=POOL))
        assert router.select(Criteria()).id == "a"
        router.mark_down("a")
        assert router.select(Criteria()).id == "b"

    def test_missing_key_round_robin(self) -> None:
        router = load_router(config(default={**POOL, "missing_key": "round_robin"}))
        assert [router.select(Criteria()).id for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]

    def test_missing_key_reject(self) -> None:
        router = load_router(config(default={**POOL, "missing_key": "reject"}))
        with pytest.raises(NoEndpointError, match="authenticated_user, application"):
            router.select(Criteria())
        with pytest.raises(LookupError):
            router.select(Criteria())

    def test_none_attributes_are_absent(self) -> None:
        router = load_router(
            config(
                {
                    "name": "t",
                    "match": {"attributes": {"x-tenant": {"present": True}}},
                    "target": "a",
                },
                default={
                    "endpoints": ["a", "b"],
                    "hash_on": ["attributes.x-user"],
                    "missing_key": "reject",
                },
            )
        )
        assert Criteria(attributes={"x-tenant": None}).attributes == {}
        assert (
            router.explain(Criteria(attributes={"x-tenant": None, "x-user": "u"})).rule == "default"
        )
        with pytest.raises(NoEndpointError):
            router.select(Criteria(attributes={"x-user": None}))

    def test_attribute_key_source(self) -> None:
        router = load_router(
            config(default={"endpoints": ["a", "b"], "hash_on": ["attributes.x-tenant"]})
        )
        decision = router.explain(Criteria(attributes={"X-Tenant": "acme"}))
        assert (decision.key, decision.key_source) == ("acme", "attributes.x-tenant")


class TestHealth:
    def test_down_replica_gets_nothing_and_only_its_keys_move(self) -> None:
        router = load_router(config(default=POOL))
        users = [Criteria(authenticated_user=f"user{i}") for i in range(300)]
        before = {c: router.select(c).id for c in users}
        assert router.mark_down("b", reason="lag", detail="12 MB behind")
        during = {c: router.select(c).id for c in users}
        assert "b" not in during.values()
        assert all(during[c] == before[c] for c in users if before[c] != "b")
        router.mark_up("b")
        assert {c: router.select(c).id for c in users} == before

    def test_explain_shows_the_skipped_replica_and_why(self) -> None:
        router = load_router(config(default=POOL))
        criteria = next(
            c
            for c in (Criteria(authenticated_user=f"u{i}") for i in range(100))
            if router.select(c).id == "b"
        )
        router.mark_down("b", reason="lag", detail="12 MB behind")
        decision = router.explain(criteria)
        assert decision.failover
        assert decision.first_choice is not None
        assert decision.first_choice.id == "b"
        assert decision.skipped == (("b", "down (lag: 12 MB behind)"),)
        assert decision.endpoint.id != "b"

    def test_failover_order_is_deterministic(self) -> None:
        first = load_router(config(default=POOL))
        second = load_router(config(default=POOL))
        for router in (first, second):
            router.mark_down("a")
        for i in range(100):
            c = Criteria(authenticated_user=f"u{i}")
            assert first.select(c) == second.select(c)

    def test_panic_routes_to_all_when_too_few_are_up(self) -> None:
        router = load_router(config(default={**POOL, "panic_threshold": 0.5}))
        users = [Criteria(authenticated_user=f"user{i}") for i in range(100)]
        before = {c: router.select(c).id for c in users}
        router.mark_down("a")
        router.mark_down("b")  # 1 of 3 up: below half
        decision = router.explain(users[0])
        assert decision.panic
        assert {c: router.select(c).id for c in users} == before

    def test_single_endpoint_down_still_serves_in_panic(self) -> None:
        router = load_router(config())
        router.mark_down("dflt")
        decision = router.explain(Criteria())
        assert decision.endpoint.id == "dflt"
        assert decision.panic

    def test_health_changes_invalidate_cached_decisions(self) -> None:
        router = load_router(config(default=POOL))
        criteria = Criteria(authenticated_user="alice")
        held = router.select(criteria)
        router.select(criteria)  # now cached
        router.mark_down(held)
        assert router.select(criteria) != held

    def test_unknown_endpoint_is_a_key_error(self) -> None:
        router = load_router(config())
        with pytest.raises(KeyError, match="nope"):
            router.mark_down("nope")

    def test_mark_down_reports_change_and_emits_events(self) -> None:
        router = load_router(config(default=POOL))
        events: list[object] = []
        router.events.subscribe(events.append)
        assert router.mark_down(Endpoint("a", "http://a.test"), reason="manual")
        assert not router.mark_down("a", reason="manual")
        assert router.mark_up("a")
        kinds = [(e.endpoint_id, e.healthy) for e in events if isinstance(e, HealthEvent)]
        assert kinds == [("a", False), ("a", True)]
        assert router.health["a"].healthy
        assert router.health["b"].healthy


class TestReload:
    def test_reload_swaps_and_keeps_health_of_survivors(self) -> None:
        router = load_router(config(default=POOL))
        router.mark_down("b")
        router.mark_down("c")
        new = config(default={"endpoints": ["a", "b"], "hash_on": ["authenticated_user"]})
        del new["endpoints"]["c"]
        router.reload(new)
        assert not router.health["b"].healthy
        assert "c" not in router.health

    def test_failed_reload_keeps_the_old_config(self) -> None:
        router = load_router(config())
        events: list[object] = []
        router.events.subscribe(events.append)
        generation = router.generation
        with pytest.raises(ConfigError):
            router.reload({"routes": []})
        assert router.generation == generation
        assert router.select(Criteria()).id == "dflt"
        reloads = [e for e in events if isinstance(e, ReloadEvent)]
        assert [r.ok for r in reloads] == [False]
        assert reloads[0].error is not None
        assert "routes" in reloads[0].error

    def test_replace_config_reports_a_reload(self) -> None:
        router = load_router(config())
        events: list[object] = []
        router.events.subscribe(events.append)
        router.replace_config(load_router(config(default="a")).config)
        assert [type(e).__name__ for e in events] == ["ReloadEvent"]
        assert router.select(Criteria()).id == "a"

    def test_reload_never_serves_a_cached_old_decision(self) -> None:
        router = load_router(config())
        criteria = Criteria(application="x")
        assert router.select(criteria).id == "dflt"
        router.reload(config({"name": "x", "match": {"application": "x"}, "target": "a"}))
        assert router.select(criteria).id == "a"


def test_observed_select_emits_events() -> None:
    router = load_router(config(default=POOL))
    events: list[object] = []
    router.events.subscribe(events.append)
    endpoint = router.select(Criteria(authenticated_user="alice"))
    (event,) = events
    assert isinstance(event, SelectEvent)
    assert event.rule == "default"
    assert event.endpoint_id == endpoint.id
    assert not event.failover


def test_a_failing_observer_never_breaks_routing(caplog: pytest.LogCaptureFixture) -> None:
    router = load_router(config())

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    router.events.subscribe(broken)
    assert router.select(Criteria()).id == "dflt"
    assert "observer" in caplog.text


def test_router_from_config_object() -> None:
    router = load_router(config())
    again = Router(router.config)
    assert again.select(Criteria()) == router.select(Criteria())


def test_huge_criteria_route_but_are_not_cached() -> None:
    from selectors_lib._snapshot import MAX_CACHED_CHARS

    router = load_router(config(default=POOL))
    small = Criteria(authenticated_user="alice")
    huge = Criteria(authenticated_user="x" * (MAX_CACHED_CHARS + 1))
    # Large in a field no rule or pool reads: its key is small, but the bound
    # is on the criteria, as documented.
    unread = Criteria(authenticated_user="bob", origin="x" * (MAX_CACHED_CHARS + 1))
    assert router.select(small) == router.select(small)
    assert router.select(huge) == router.select(huge)
    assert router.select(unread) == router.select(unread)
    snap = router._snapshot
    assert snap.cache is not None
    assert snap.key_of(small) in snap.cache
    assert snap.key_of(huge) not in snap.cache
    assert snap.key_of(unread) not in snap.cache
