"""Hostile request input: odd criteria and headers never make routing raise or balloon."""

from __future__ import annotations

import json
import sys
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selectors_lib import FIELDS, Criteria, HeaderMapping, Router, load_router

ANY_CHAR = st.characters(exclude_categories=())  # surrogates and controls included
NASTY = {
    "empty": "",
    "nul": "\x00",
    "nuls": "\x00" * 5_000,
    "controls": "".join(map(chr, range(32))) + "\x7f",
    "surrogate": "\ud800",
    "surrogates": "\udfff\ud800" * 100,
    "dotted_i": "İ" * 3_000,  # lowercases to two code points each
    "sharp_s": "ß" * 10,
    "adversarial": "a" * 5_000 + "!",
    "long": "x" * 50_000,
    "astral": "\U0001f600" * 1_000,
    "bidi": "\u202e\u2066",
    "crlf": "a\r\nX-Injected: 1",
}


def _nasty(name: str) -> str:
    return NASTY[name]


values = st.one_of(
    st.none(),
    st.text(ANY_CHAR, max_size=30),
    st.sampled_from(sorted(NASTY)).map(_nasty),
    st.sampled_from(["app-1", "APP-1", "deck", "DECK", "t1", "big", "BIG", "ss", "i̇"]),
)
names = st.one_of(
    st.sampled_from(["x-tenant", "X-Tenant", "x-region", "X-SPINNAKER-APPLICATION"]),
    st.text(ANY_CHAR, max_size=10),
)


def config() -> dict[str, Any]:
    """Every matcher kind, case mode and key source, with some replicas down."""
    pool = ["r1", "r2", "r3", "r4"]
    return {
        "version": 1,
        "settings": {"max_value_length": 1000},
        "endpoints": {f"r{i}": f"http://r{i}" for i in range(1, 6)},
        "routes": [
            {
                "name": "catastrophic",
                "priority": 30,
                "match": {"application": {"regex": "(a+)+$"}},
                "target": "r5",
            },
            {
                "name": "lowered",
                "priority": 20,
                "match": {"application": {"regex": ["app-.*", "big"], "case": "lower"}},
                "target": {"endpoints": pool, "hash_on": ["execution_id"], "algorithm": "ring"},
            },
            {
                "name": "ignoring",
                "priority": 20,
                "match": {
                    "origin": {"equals": ["deck", "ß", "İ"], "case": "ignore"},
                    "account": {"regex": "prod|stag.*", "case": "ignore"},
                },
                "target": {
                    "endpoints": pool,
                    "hash_on": ["authenticated_user", "attributes.x-tenant"],
                    "algorithm": "maglev",
                    "options": {"table_size": 251},
                },
            },
            {
                "name": "tenant",
                "priority": 10,
                "match": {"attributes": {"x-tenant": {"present": True}, "x-region": ["eu", ""]}},
                "target": {
                    "endpoints": pool,
                    "hash_on": ["attributes.x-tenant", "location"],
                    "algorithm": "rendezvous",
                },
            },
            {
                "name": "absent",
                "match": {"execution_id": {"present": False}, "cloud_provider": "aws"},
                "target": {"endpoints": pool, "hash_on": ["application"], "algorithm": "jump"},
            },
            {
                "name": "default",
                "default": True,
                "target": {"endpoints": pool, "hash_on": ["execution_id", "application"]},
            },
        ],
    }


ROUTER = load_router(config())
ROUTER.mark_down("r2", reason="probe", detail="\x00 odd detail \ud800")
DOWN_ROUTER = load_router(config())
for _id in ("r1", "r2", "r3"):
    DOWN_ROUTER.mark_down(_id)  # pools in panic


def route_everything(router: Router, criteria: Criteria) -> None:
    """Route ``criteria`` every way a user can, asserting it never raises and agrees."""
    endpoint = router.select(criteria)
    decision = router.explain(criteria)
    assert decision.endpoint == endpoint
    assert endpoint in router.endpoints
    json.dumps(decision.to_dict())  # JSON-ready, even with surrogates (escaped)
    str(decision)
    assert router.select(criteria) == endpoint  # cached answer equals the computed one


@st.composite
def criteria(draw: st.DrawFn) -> Criteria:
    fields = {name: draw(values) for name in draw(st.sets(st.sampled_from(FIELDS)))}
    attributes = draw(st.dictionaries(names, values.filter(lambda v: v is not None), max_size=4))
    return Criteria(**fields, attributes=attributes)


FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(criteria())
def test_odd_criteria_never_break_routing(c: Criteria) -> None:
    route_everything(ROUTER, c)
    route_everything(DOWN_ROUTER, c)


header_values = st.one_of(
    values.filter(lambda v: v is not None),
    st.binary(max_size=40),
    st.sampled_from(sorted(NASTY)).map(_nasty).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
header_names = st.one_of(
    st.sampled_from(
        [
            "X-SPINNAKER-APPLICATION",
            "x-spinnaker-user",
            "X-Spinnaker-Execution-Id",
            "x-spinnaker-user-origin",
            "X-RateLimit-App",
            "x-tenant",
            "x-spinnaker-account",
        ]
    ),
    st.text(ANY_CHAR, max_size=12),
    st.binary(max_size=12),
)


@FUZZ
@given(
    st.lists(st.tuples(header_names, header_values), max_size=10),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.none() | values,
)
def test_odd_headers_never_break_criteria_or_routing(
    pairs: list[tuple[Any, Any]], as_mapping: bool, trust: bool, gate: bool, user: str | None
) -> None:
    mapping = HeaderMapping(
        attributes=("x-tenant", "X-Region"),
        trust_user_header=trust,
        gate_origin=gate,
        max_value_length=64,
    )
    headers: Any = pairs
    if as_mapping:
        headers = {
            (n.decode("latin-1") if isinstance(n, bytes) else n): (
                v.decode("latin-1") if isinstance(v, bytes) else v
            )
            for n, v in pairs
        }
    c = mapping.criteria(headers, user=user)
    for name in FIELDS:
        value = getattr(c, name)
        assert value is None or len(value) <= 65
    assert all(len(v) <= 65 for v in c.attributes.values())
    if gate:
        assert c.origin in {"deck", "api"}
    route_everything(ROUTER, c)


TEN_MB = 10 * 1024 * 1024


def peak_during(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_ten_megabyte_header_is_capped_in_bounded_memory() -> None:
    raw = b"A" * TEN_MB
    mapping = HeaderMapping(attributes=("x-tenant",))
    headers = [(b"x-spinnaker-application", raw), (b"x-tenant", raw), (b"x-junk", raw)]
    kept: list[Criteria] = []

    def run() -> None:
        c = mapping.criteria(headers)
        route_everything(ROUTER, c)
        kept.append(c)

    peak = peak_during(run)
    (c,) = kept
    assert c.application is not None
    assert len(c.application) == mapping.max_value_length + 1
    assert len(c.attributes["x-tenant"]) == mapping.max_value_length + 1
    # Values are cut to the cap before they are decoded: 30 MB of headers cost
    # kilobytes, not a copy of each.
    assert peak < 256 * 1024


def test_ten_megabyte_criteria_values_route_in_bounded_memory() -> None:
    value = "a" * TEN_MB + "!"  # adversarial for (a+)+$, if it ever ran
    weird = "İ" * (TEN_MB // 2)  # two bytes each; lowercasing doubles the length
    size = sys.getsizeof(value) + sys.getsizeof(weird)
    criteria = Criteria(
        application=value,
        execution_id=weird,
        origin=weird,
        account=value,
        attributes={"x-tenant": value},
    )
    route_everything(ROUTER, criteria)

    def run() -> None:
        ROUTER.select(criteria)
        decision = ROUTER.explain(criteria)
        decision.to_dict()
        str(decision)

    peak = peak_during(run)
    decision = ROUTER.explain(criteria)
    # The pattern was never run on the oversized value: the cap rejected it.
    reason = decision.considered[0].reason
    assert reason == "application is longer than 1000 characters, never matched"
    # Linear, about one copy (lowercasing, key encoding, the key's repr in
    # str(decision)), never one per rule or per replica.
    assert peak < 2 * size
