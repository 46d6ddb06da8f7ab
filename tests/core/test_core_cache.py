"""The decision cache keys a request on what the configuration reads, and answers as routing does.

The key holds only the criteria fields some rule matches on or some pool
hashes on (plus the attributes when any is read, or a pool has a consistency
policy). These tests check the key's shape, and with Hypothesis that a cached
router answers every request exactly as ``explain()`` (which walks every rule
and is never cached) does, over configurations reading different fields and
requests that differ in fields the configuration never reads.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import Criteria, NoEndpointError, load_config, load_router
from selectors_lib._snapshot import key_function

SOURCES = ["application", "authenticated_user", "origin", "location", "attributes.x-tenant"]
KEY_SOURCES = [*SOURCES, "account", "attributes.x-user"]
VALUES = ["a", "b", "A", ""]


def _route(name: str, match: dict[str, Any], hash_on: list[str], first: int = 0) -> dict[str, Any]:
    # Pools of 3 out of 8 endpoints, starting at ``first``: rules that win
    # differently mostly answer differently, keyless requests included.
    endpoints = [f"e{(first + j) % 8}" for j in range(3)]
    return {
        "name": name,
        "priority": 1,
        "match": match,
        "target": {"endpoints": endpoints, "hash_on": hash_on},
    }


def _config(routes: list[dict[str, Any]], default_hash_on: list[str]) -> dict[str, Any]:
    default = {"endpoints": ["d0", "d1"], "hash_on": default_hash_on}
    endpoints = {f"e{i}": f"http://e{i}.test" for i in range(8)}
    return {
        "endpoints": {**endpoints, "d0": "http://d0.test", "d1": "http://d1.test"},
        "routes": [*routes, {"name": "d", "default": True, "target": default}],
        "settings": {"cache_size": 8},
    }


def test_the_key_holds_the_read_fields_in_field_order() -> None:
    c = Criteria(application="app", authenticated_user="u", origin="deck", attributes={"X-T": "t"})
    two = load_config(_config([_route("r", {"origin": "deck"}, ["application"])], []))
    assert key_function(two)(c) == ("app", "deck")
    one = load_config(_config([], ["authenticated_user"]))
    assert key_function(one)(c) == "u"
    none = load_config(_config([], []))
    assert key_function(none)(c) is None
    # Any attribute read: all of them, as sorted items (one hashable tuple).
    attrs = load_config(_config([_route("r", {"attributes": {"x-t": "t"}}, [])], ["origin"]))
    assert key_function(attrs)(c) == ("deck", (("x-t", "t"),))
    assert key_function(attrs)(Criteria(origin="deck")) == ("deck", ())


def test_requests_differing_only_in_unread_fields_share_one_entry() -> None:
    router = load_router(_config([_route("r", {"application": "a"}, ["origin"])], []))
    for location in ("eu", "us", None, "ap"):
        router.select(Criteria(application="a", origin="o", location=location, account="x"))
    cache = router._snapshot.cache
    assert cache is not None
    assert list(cache) == [("a", "o")]


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    routes = []
    for i in range(draw(st.integers(0, 6))):
        match: dict[str, Any] = {}
        for source in draw(st.lists(st.sampled_from(SOURCES), unique=True, max_size=2)):
            spec: Any = draw(
                st.sampled_from(VALUES)
                | st.builds(lambda p: {"present": p}, st.booleans())
                | st.builds(lambda v: {"equals": [v], "case": "ignore"}, st.sampled_from(VALUES))
            )
            if source.startswith("attributes."):
                match.setdefault("attributes", {})[source[11:]] = spec
            else:
                match[source] = spec
        hash_on = draw(st.lists(st.sampled_from(KEY_SOURCES), unique=True, max_size=2))
        route = _route(f"r{i}", match, hash_on, first=draw(st.integers(0, 7)))
        route["priority"] = draw(st.integers(0, 2))
        if hash_on and draw(st.booleans()):
            route["target"]["missing_key"] = "reject"
        routes.append(route)
    default_hash_on = draw(st.lists(st.sampled_from(KEY_SOURCES), unique=True, max_size=2))
    return _config(routes, default_hash_on)


FIELDS = ["application", "authenticated_user", "origin", "location", "account", "execution_id"]
NAMES = ["X-Tenant", "x-user", "x-other"]


@st.composite
def requests(draw: st.DrawFn) -> list[Criteria]:
    """Requests that each differ from one base request in one value: many share a key."""
    maybe = st.none() | st.sampled_from(VALUES)
    base: dict[str, Any] = {f: draw(maybe) for f in FIELDS}
    base_attributes = {n: draw(maybe) for n in NAMES}
    out = []
    for _ in range(draw(st.integers(1, 30))):
        fields, attributes = dict(base), dict(base_attributes)
        name = draw(st.sampled_from(FIELDS + NAMES))
        (attributes if name in NAMES else fields)[name] = draw(maybe)
        out.append(Criteria(**fields, attributes=attributes))
    return out


def _outcome(route: Any, c: Criteria) -> str:
    try:
        return str(route(c).id)
    except NoEndpointError:
        return "rejected"


@settings(max_examples=200, deadline=None)
@given(configs(), requests())
def test_a_cached_router_answers_as_explain(data: dict[str, Any], cs: list[Criteria]) -> None:
    router = load_router(data)
    for _ in range(2):  # the second round is served from the cache where it can be
        for c in cs:
            expected = _outcome(lambda c: router.explain(c).endpoint, c)
            assert _outcome(router.select, c) == expected, c


def test_a_configuration_reading_nothing_caches_one_answer() -> None:
    router = load_router(_config([], []))
    first = router.select(Criteria(application="x"))
    assert router.select(Criteria(authenticated_user="y")) == first
    cache = router._snapshot.cache
    assert cache is not None
    assert list(cache) == [None]


@pytest.mark.parametrize("field", ["application", "attributes.x-user"])
def test_the_key_follows_a_reload(field: str) -> None:
    router = load_router(_config([], ["origin"]))
    router.select(Criteria(origin="o", application="a", attributes={"x-user": "u"}))
    router.replace_config(load_config(_config([], [field])))
    c = Criteria(origin="o", application="a", attributes={"x-user": "u"})
    assert router.select(c) == router.explain(c).endpoint
    cache = router._snapshot.cache
    assert cache is not None
    assert list(cache) == [router._snapshot.key_of(c)]
