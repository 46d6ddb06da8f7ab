"""The compiled rule index answers exactly as the linear scan (the oracle) does."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import Criteria, FieldMatch, Match, Router, load_config, load_router
from selectors_lib._index import RuleIndex
from selectors_lib._match import _fold_char, equals_ignore_case, fold_case
from selectors_lib._regex import compile_pattern
from selectors_lib._router import RouterConfig, Rule

#: Values whose case mappings differ between Python's full mappings, Java's
#: simple ones and ASCII: every case mode must index them as it compares them.
TRICKY = ["a", "A", "b", "ss", "SS", "ß", "ẞ", "s", "S", "ſ", "k", "K", "K", "i", "I", "İ", "ı"]
TRICKY += ["i̇", "ǅ", "ǆ", "Ǆ", "deck", "DECK", "Deck", ""]
SOURCES = ["application", "authenticated_user", "origin", "attributes.x-tenant"]
PATTERNS = ["a|b", "[a-c]", "d.*", ".*", "A", "s+", "(?i)k", "de.*", "^D.*k", "ß.*", "ss"]

value = st.sampled_from(TRICKY)


@st.composite
def field_spec(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["plain", "equals", "equals", "regex", "present"]))
    case = draw(st.sampled_from(["sensitive", "lower", "ignore"]))
    if kind == "plain":
        return draw(value)
    if kind == "equals":
        return {"equals": draw(st.lists(value, min_size=1, max_size=3)), "case": case}
    if kind == "regex":
        patterns = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2))
        return {"regex": patterns, "case": case}
    return {"present": draw(st.booleans())}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """Overlapping values, every case mode, attributes, equal priorities, pools of 1-3."""
    count = draw(st.integers(1, 12))
    routes: list[dict[str, Any]] = []
    for i in range(count):
        sources = draw(st.lists(st.sampled_from(SOURCES), unique=True, max_size=3))
        match: dict[str, Any] = {}
        for source in sources:
            if source.startswith("attributes."):
                match.setdefault("attributes", {})[source[11:]] = draw(field_spec())
            else:
                match[source] = draw(field_spec())
        size = draw(st.integers(1, 3))
        routes.append(
            {
                "name": f"r{i}",
                "priority": draw(st.integers(-2, 2)),
                "match": match,
                "target": {
                    "endpoints": [f"e{(i + j) % 5}" for j in range(size)],
                    "hash_on": ["authenticated_user", "application"],
                },
            }
        )
    routes.append({"name": "fallback", "default": True, "target": "e0"})
    endpoints = {f"e{i}": f"http://e{i}.test" for i in range(5)}
    return {"endpoints": endpoints, "routes": routes, "settings": {"cache_size": 4}}


@st.composite
def requests(draw: st.DrawFn) -> Criteria:
    maybe = st.none() | value
    return Criteria(
        application=draw(maybe),
        authenticated_user=draw(maybe),
        origin=draw(maybe),
        attributes={"X-Tenant": v} if (v := draw(maybe)) is not None else None,
    )


def scan_rank(config: RouterConfig, criteria: Criteria) -> int:
    """The oracle: today's linear scan, first matching rule in scan order."""
    for rank, rule in enumerate(config.ordered_rules):
        if rule.match.test(criteria):
            return rank
    return len(config.ordered_rules)


@settings(max_examples=300, deadline=None)
@given(configs(), st.lists(requests(), min_size=1, max_size=20))
def test_index_picks_the_rule_the_scan_picks(data: dict[str, Any], cs: list[Criteria]) -> None:
    config = load_config(data)
    index = RuleIndex(config.ordered_rules)
    for c in cs:
        assert index.winner(c) == scan_rank(config, c), c


@settings(max_examples=100, deadline=None)
@given(
    configs(),
    st.lists(requests(), min_size=1, max_size=10),
    st.lists(st.sampled_from([f"e{i}" for i in range(5)]), max_size=4),
)
def test_select_equals_explain_under_health_changes(
    data: dict[str, Any], cs: list[Criteria], down: list[str]
) -> None:
    # explain() still walks every rule in order: a second, independent oracle
    # that also covers pools, failover and the decision cache (size 4).
    router = load_router(data)
    down = [e for e in down if e in router.config.endpoint_ids]
    for endpoint in down:
        router.mark_down(endpoint)
        for c in cs:
            assert router.select(c) == router.explain(c).endpoint
            assert router.select(c) == router.explain(c).endpoint  # from the cache
    for endpoint in down:
        router.mark_up(endpoint)
    for c in cs:
        assert router.select(c) == router.explain(c).endpoint


def _rule(name: str, priority: int, *fields: tuple[str, FieldMatch]) -> Rule:
    from selectors_lib import Endpoint, Pool

    return Rule(name, priority, Match(fields), Pool((Endpoint(name, f"http://{name}.test"),)))


def test_hand_built_matchers_follow_the_matchers_precedence() -> None:
    # Built without the loader: ``present`` decides before patterns, patterns
    # before ``equals``, and an empty ``equals`` matches nothing.
    both = FieldMatch(equals=("x",), regex=("y",), compiled=(compile_pattern("y"),))
    rules = [
        _rule("both", 9, ("application", both)),
        _rule("empty", 8, ("application", FieldMatch())),
        _rule("odd-case", 7, ("origin", FieldMatch(equals=("Q",), case="other"))),
        _rule("present", 6, ("origin", FieldMatch(equals=("z",), present=True))),
    ]
    index = RuleIndex(rules)
    assert index.winner(Criteria(application="y")) == 0
    assert index.winner(Criteria(application="x")) == 4
    assert index.winner(Criteria(origin="Q")) == 2
    assert index.winner(Criteria(origin="q")) == 3
    assert index.winner(Criteria()) == 4


def test_ties_go_to_declaration_order_across_index_groups() -> None:
    rules = [
        _rule("by-user", 1, ("authenticated_user", FieldMatch(equals=("u",)))),
        _rule("by-app", 1, ("application", FieldMatch(equals=("A",), case="ignore"))),
        _rule(
            "pattern",
            1,
            ("application", FieldMatch(regex=("a",), compiled=(compile_pattern("a"),))),
        ),
    ]
    config = RouterConfig(tuple(rules), _rule("d", 0))
    router = Router(config)
    assert router.select(Criteria(authenticated_user="u", application="a")).id == "by-user"
    assert router.select(Criteria(application="a")).id == "by-app"


def test_a_busy_key_is_not_chosen_as_the_index_field() -> None:
    # 200 rules for one application and many users: filed under the user, so
    # a request looks at one rule, not 200.
    rules = [
        _rule(
            f"r{i}",
            0,
            ("application", FieldMatch(equals=("big",))),
            ("authenticated_user", FieldMatch(equals=(f"u{i}",))),
        )
        for i in range(200)
    ]
    index = RuleIndex(rules)
    ((_, _, table),) = index._equals
    assert set(table) == {f"u{i}" for i in range(200)}
    assert index.winner(Criteria(application="big", authenticated_user="u150")) == 150


CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(TRICKY[:-1])


@settings(max_examples=500, deadline=None)
@given(st.lists(CHARS, max_size=6).map("".join), st.lists(CHARS, max_size=6).map("".join))
def test_fold_case_is_equals_ignore_case(a: str, b: str) -> None:
    assert (fold_case(a) == fold_case(b)) == equals_ignore_case(a, b)
    assert equals_ignore_case(a, fold_case(a))


def test_fold_case_agrees_with_the_per_char_mapping_everywhere() -> None:
    # The translate table (and the ASCII shortcut) against the definition,
    # for the whole Basic Multilingual Plane and a sample beyond it.
    codes = [*range(0xD800), *range(0xE000, 0x10000), *range(0x10400, 0x10500), 0x1E900]
    text = "".join(map(chr, codes))
    assert fold_case(text) == "".join(_fold_char(c) for c in text)
    ascii_text = "".join(map(chr, range(128)))
    assert fold_case(ascii_text) == "".join(_fold_char(c) for c in ascii_text)


def test_every_case_mode_indexes_tricky_values_as_it_compares_them() -> None:
    # One rule per (case mode, configured value); each request value must find
    # the same first rule as the scan, for every pair of tricky values.
    for case in ("sensitive", "lower", "ignore"):
        for source in ("origin", "attributes.x-tenant"):
            rules = [
                _rule(f"r{i}", 0, (source, FieldMatch(equals=(x,), case=case)))
                for i, x in enumerate(TRICKY)
            ]
            config = RouterConfig(tuple(rules), _rule("d", 0))
            index = RuleIndex(config.ordered_rules)
            for v in TRICKY:
                c = Criteria(origin=v, attributes={"x-tenant": v})
                assert index.winner(c) == scan_rank(config, c), (case, v)
            # Rules are tried in order: the later of two equal keys never wins.
            for i in range(len(rules)):
                rest = RuleIndex(config.ordered_rules[i:])
                for v in TRICKY:
                    c = Criteria(origin=v, attributes={"x-tenant": v})
                    sub = RouterConfig(config.ordered_rules[i:], config.default)
                    assert rest.winner(c) == scan_rank(sub, c), (case, v, i)


def test_residual_patterns_answer_as_the_scan_for_every_value() -> None:
    # Patterns stay in the residual list, behind a literal-prefix check where
    # the pattern has one: the check must never reject a value that matches.
    values = [*TRICKY, "dx", "Dak", "ssx", "ßx", "A"]
    for case in ("sensitive", "lower", "ignore"):
        rules = [
            _rule(
                f"p{i}",
                0,
                (
                    "application",
                    FieldMatch(
                        regex=(p,),
                        case=case,
                        compiled=(compile_pattern(p, ignore_case=case == "ignore"),),
                    ),
                ),
            )
            for i, p in enumerate(PATTERNS)
        ]
        for i in range(len(rules)):
            config = RouterConfig(tuple(rules[i:]), _rule("d", 0))
            index = RuleIndex(config.ordered_rules)
            for v in values:
                c = Criteria(application=v)
                assert index.winner(c) == scan_rank(config, c), (case, PATTERNS[i], v)
