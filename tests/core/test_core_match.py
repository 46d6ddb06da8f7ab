"""Field matchers: each kind, each case rule, absent values, odd input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selectors_lib import Criteria, FieldMatch, Match
from selectors_lib._match import equals_ignore_case
from selectors_lib._regex import compile_pattern, nested_quantifier


def regex(*patterns: str, case: str = "sensitive", max_length: int = 4096) -> FieldMatch:
    compiled = tuple(compile_pattern(p, ignore_case=case == "ignore") for p in patterns)
    return FieldMatch(regex=patterns, case=case, compiled=compiled, max_length=max_length)


class TestEquals:
    def test_any_of_the_values(self) -> None:
        m = FieldMatch(equals=("pipeline", "orchestration"))
        assert m.test("pipeline")
        assert m.test("orchestration")
        assert not m.test("Pipeline")
        assert not m.test("pipelines")

    def test_absent_never_matches(self) -> None:
        assert not FieldMatch(equals=("",)).test(None)
        assert FieldMatch(equals=("",)).test("")

    def test_lower_lowercases_only_the_request_value(self) -> None:
        m = FieldMatch(equals=("myapp", "MixedCase"), case="lower")
        assert m.test("MYAPP")
        assert m.test("myapp")
        # The configured value is not lowercased: capitals never match.
        assert not m.test("MixedCase")
        assert not m.test("mixedcase")

    def test_ignore_compares_as_java_equals_ignore_case(self) -> None:
        m = FieldMatch(equals=("deck",), case="ignore")
        assert m.test("DECK")
        assert m.test("Deck")
        assert not m.test("decks")
        assert not m.test(None)


class TestRegex:
    def test_full_match_not_search(self) -> None:
        m = regex("app.*")
        assert m.test("app1")
        assert not m.test("myapp1")
        assert not regex("app").test("app1")

    def test_any_pattern(self) -> None:
        m = regex("a.*", "b.*")
        assert m.test("abc")
        assert m.test("bcd")
        assert not m.test("cde")

    def test_lower_pattern_with_capitals_never_matches(self) -> None:
        assert not regex("MyApp", case="lower").test("MyApp")
        assert regex("(?i)MyApp", case="lower").test("MyApp")
        assert regex("myapp", case="lower").test("MYAPP")

    def test_ignore_compiles_case_insensitively(self) -> None:
        assert regex("MyApp", case="ignore").test("myapp")

    def test_values_over_the_cap_never_reach_the_pattern(self) -> None:
        m = regex(".*", max_length=10)
        assert m.test("x" * 10)
        assert not m.test("x" * 11)
        ok, why = m.explain("application", "x" * 11)
        assert not ok
        assert "longer than 10" in why

    def test_re2_never_raises_on_a_lone_surrogate(self) -> None:
        pattern = compile_pattern("a.*", engine="re2")
        assert pattern.fullmatch("a\ud800") is None
        assert pattern.fullmatch("abc")

    def test_re2_engine(self) -> None:
        pattern = compile_pattern("(a+)+$", engine="re2")
        assert pattern.fullmatch("aaa")
        assert not pattern.fullmatch("a" * 50_000 + "!")

    def test_invalid_pattern_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="unterminated"):
            compile_pattern("(abc")


class TestPresent:
    def test_present_and_absent(self) -> None:
        assert FieldMatch(present=True).test("")
        assert not FieldMatch(present=True).test(None)
        assert FieldMatch(present=False).test(None)
        assert not FieldMatch(present=False).test("x")


class TestMatch:
    def test_fields_are_anded(self) -> None:
        m = Match(
            (
                ("origin", FieldMatch(equals=("deck",), case="ignore")),
                ("attributes.x-tenant", FieldMatch(equals=("acme",))),
            )
        )
        assert m.test(Criteria(origin="Deck", attributes={"X-Tenant": "acme"}))
        assert not m.test(Criteria(origin="Deck"))
        assert not m.test(Criteria(attributes={"x-tenant": "acme"}))

    def test_empty_match_takes_everything(self) -> None:
        assert Match().test(Criteria())
        assert Match().explain(Criteria()) == (True, "matches every request")

    def test_explain_names_the_failing_field(self) -> None:
        m = Match(
            (("application", FieldMatch(equals=("a",))), ("origin", FieldMatch(equals=("deck",))))
        )
        ok, why = m.explain(Criteria(application="a", origin="api"))
        assert not ok
        assert why == "origin 'api' does not match = 'deck'"
        ok, why = m.explain(Criteria(application="a"))
        assert why == "origin absent does not match = 'deck'"


def test_equals_ignore_case_is_per_character() -> None:
    assert equals_ignore_case("DECK", "deck")
    assert not equals_ignore_case("ß", "ss")  # casefold would say equal; Java does not
    assert equals_ignore_case("ẞ", "ß")  # capital sharp s lowercases to ß
    assert equals_ignore_case("K", "k")  # Kelvin sign lowercases to k
    assert not equals_ignore_case("a", "ab")


@pytest.mark.parametrize(
    ("a", "b", "java"),
    [
        ("apİ", "api", True),  # Character.toLowerCase('İ') == 'i'
        ("ı", "I", True),  # dotless i uppercases to I
        ("ς", "Σ", True),
        ("ﬅ", "ﬆ", False),  # equal only under full mappings ("ST")
        ("\u0390", "\u1fd3", False),  # distinct chars with the same full uppercase
        ("ᾳ", "ᾼ", True),  # simple uppercase of ᾳ is its titlecase ᾼ
        ("ß", "SS", False),
    ],
)
def test_equals_ignore_case_uses_javas_simple_mappings(a: str, b: str, java: bool) -> None:
    assert equals_ignore_case(a, b) is java


@given(st.text(max_size=30), st.text(max_size=30))
def test_equals_ignore_case_is_symmetric_and_reflexive(a: str, b: str) -> None:
    assert equals_ignore_case(a, a)
    assert equals_ignore_case(a, b) == equals_ignore_case(b, a)
    if a.lower() == b.lower() and len(a) == len(b) and all(len(x.lower()) == 1 for x in a + b):
        assert equals_ignore_case(a, b)


@pytest.mark.parametrize(
    ("pattern", "risky"),
    [
        ("(a+)+$", True),
        ("(\\w*)*x", True),
        ("(?:a|b+)*", True),
        ("a+b+c*", False),
        ("(abc)+", False),
        ("x{1,5}", False),
        ("[a-z]+(-[a-z]+)*", False),
    ],
)
def test_nested_quantifier_detection(pattern: str, risky: bool) -> None:
    assert nested_quantifier(pattern) is risky
