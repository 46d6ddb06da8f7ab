"""Properties of routing that users rely on, checked with hypothesis."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import Criteria, load_router
from strategies import criteria, native_configs, simple_criteria


@given(native_configs(), st.lists(simple_criteria(), min_size=1, max_size=10))
def test_select_is_a_pure_function(config: dict[str, Any], requests: list[Criteria]) -> None:
    router = load_router(config)
    again = load_router(config)
    for c in requests:
        first = router.select(c)
        assert all(router.select(c) == first for _ in range(1000 // len(requests)))
        assert again.select(c) == first
        assert router.explain(c).endpoint == first


@given(native_configs(), simple_criteria())
def test_the_winner_matches_and_nothing_outranks_it(config: dict[str, Any], c: Criteria) -> None:
    router = load_router(config)
    decision = router.explain(c)
    rules = {rule.name: (index, rule) for index, rule in enumerate(router.config.rules)}
    matching = [(index, rule) for index, rule in rules.values() if rule.match.test(c)]
    if decision.default:
        assert matching == []
        assert decision.endpoint.id == "dflt"
        return
    index, winner = rules[decision.rule]
    assert winner.match.test(c)
    for other_index, other in matching:
        assert winner.priority is not None
        assert other.priority is not None
        assert (other.priority, -other_index) <= (winner.priority, -index)


@given(
    native_configs(distinct_priorities=True), st.randoms(), st.lists(simple_criteria(), max_size=10)
)
def test_declaration_order_is_irrelevant_with_distinct_priorities(
    config: dict[str, Any], rnd: Any, requests: list[Criteria]
) -> None:
    shuffled = dict(config)
    routes = list(config["routes"])
    rnd.shuffle(routes)
    shuffled["routes"] = routes
    a, b = load_router(config), load_router(shuffled)
    for c in requests:
        assert a.select(c) == b.select(c)


@given(native_configs(), simple_criteria())
def test_the_default_takes_everything_no_rule_matches(config: dict[str, Any], c: Criteria) -> None:
    router = load_router(config)
    if not any(rule.match.test(c) for rule in router.config.rules):
        assert router.select(c).id == "dflt"
        assert router.explain(c).default


ODD_CONFIG = {
    "endpoints": {"a": "http://a.test", "b": "http://b.test", "c": "http://c.test"},
    "routes": [
        {
            "name": "app",
            "priority": 3,
            "match": {"application": {"regex": "big.*", "case": "lower"}},
            "target": "a",
        },
        {
            "name": "ui",
            "priority": 2,
            "match": {"origin": {"equals": "deck", "case": "ignore"}},
            "target": "b",
        },
        {
            "name": "tenant",
            "priority": 1,
            "match": {"attributes": {"x-tenant": {"present": True}}},
            "target": "c",
        },
        {
            "name": "d",
            "default": True,
            "target": {
                "endpoints": ["a", "b", "c"],
                "hash_on": ["authenticated_user", "attributes.x-tenant"],
            },
        },
    ],
}


@settings(max_examples=300)
@given(criteria())
def test_odd_criteria_always_route(c: Criteria) -> None:
    router = load_router(ODD_CONFIG)
    endpoint = router.select(c)
    assert endpoint.id in {"a", "b", "c"}
    decision = router.explain(c)
    assert decision.endpoint == endpoint
    assert str(decision)
    assert decision.to_dict()["endpoint"]["id"] == endpoint.id
