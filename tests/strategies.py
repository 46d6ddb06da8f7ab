"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from selectors_lib import FIELDS, Criteria

#: Values that exercise matching: plain words, case variants, odd and long text.
WORDS = st.sampled_from(
    ["deck", "Deck", "DECK", "api", "pipeline", "orchestration", "alice", "bob", "app1", "big", ""]
)
ODD = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from("ßİıſKẞ\x00\n"),
    max_size=40,
)
VALUES = st.one_of(st.none(), WORDS, ODD, st.text(max_size=5000).map(lambda s: s * 2))


@st.composite
def criteria(draw: st.DrawFn, values: st.SearchStrategy[str | None] = VALUES) -> Criteria:
    """Criteria with any mix of present, absent and odd fields."""
    fields = {name: draw(values) for name in FIELDS}
    attributes = draw(st.dictionaries(st.sampled_from(["x-tenant", "X-Region"]), WORDS, max_size=2))
    return Criteria(**fields, attributes=attributes)


SIMPLE_VALUES = st.sampled_from(["a", "b", "c", "A", "deck", "DECK"])


@st.composite
def simple_criteria(draw: st.DrawFn) -> Criteria:
    """Criteria over a small alphabet, so generated rules match often."""
    fields = {
        name: draw(st.none() | SIMPLE_VALUES)
        for name in ("application", "authenticated_user", "origin", "execution_type")
    }
    return Criteria(**fields)


@st.composite
def field_specs(draw: st.DrawFn) -> Any:
    """A native match spec for one field over the small alphabet."""
    kind = draw(st.sampled_from(["plain", "list", "equals", "regex", "present"]))
    case = draw(st.sampled_from(["sensitive", "lower", "ignore"]))
    if kind == "plain":
        return draw(SIMPLE_VALUES)
    if kind == "list":
        return draw(st.lists(SIMPLE_VALUES, min_size=1, max_size=3))
    if kind == "equals":
        return {"equals": draw(st.lists(SIMPLE_VALUES, min_size=1, max_size=3)), "case": case}
    if kind == "regex":
        return {"regex": draw(st.sampled_from(["a|b", "[a-c]", "d.*", ".*", "A"])), "case": case}
    return {"present": draw(st.booleans())}


@st.composite
def native_configs(draw: st.DrawFn, *, distinct_priorities: bool = False) -> dict[str, Any]:
    """A valid native configuration with 1-6 rules over a small alphabet."""
    count = draw(st.integers(1, 6))
    if distinct_priorities:
        priorities = draw(
            st.lists(st.integers(-50, 50), min_size=count, max_size=count, unique=True)
        )
    else:
        priorities = draw(st.lists(st.integers(-3, 3), min_size=count, max_size=count))
    routes: list[dict[str, Any]] = []
    for i in range(count):
        fields = draw(
            st.lists(
                st.sampled_from(["application", "authenticated_user", "origin", "execution_type"]),
                unique=True,
                max_size=2,
            )
        )
        routes.append(
            {
                "name": f"r{i}",
                "priority": priorities[i],
                "match": {f: draw(field_specs()) for f in fields},
                "target": f"e{i}",
            }
        )
    routes.append({"name": "fallback", "default": True, "target": "dflt"})
    endpoints = {f"e{i}": f"http://e{i}.test" for i in range(count)}
    endpoints["dflt"] = "http://default.test"
    return {"endpoints": endpoints, "routes": routes}
