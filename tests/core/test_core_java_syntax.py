"""``syntax: java`` on regex matchers: loading, errors with paths, round trip."""

from __future__ import annotations

from typing import Any

import pytest

from selectors_lib import ConfigError, Criteria, Router, config_to_dict, load_config


def _config(field: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {
        "version": 1,
        **({"settings": settings} if settings else {}),
        "endpoints": {"hit": "http://hit.example.com", "rest": "http://rest.example.com"},
        "routes": [
            {"name": "r", "priority": 1, "match": {"application": field}, "target": "hit"},
            {"name": "d", "default": True, "target": "rest"},
        ],
    }


def _routes(field: dict[str, Any], value: str) -> bool:
    router = Router(load_config(_config(field)))
    return router.select(Criteria(application=value)).url == "http://hit.example.com"


@pytest.mark.parametrize(
    ("pattern", "value", "java", "python"),
    [
        (r"\w+", "café", False, True),
        ("(?i)k", "\u212a", False, True),
        ("a.b", "a\u2028b", False, True),
        (r"\p{Alpha}+", "abc", True, None),
        (r"prod-(?i)APP", "prod-app", True, None),
    ],
)
def test_java_and_python_dialects_differ_where_the_languages_do(
    pattern: str, value: str, java: bool, python: bool | None
) -> None:
    assert _routes({"regex": pattern, "syntax": "java"}, value) is java
    if python is None:  # Python's re refuses the pattern
        with pytest.raises(ConfigError):
            load_config(_config({"regex": pattern}))
    else:
        assert _routes({"regex": pattern}, value) is python


def test_java_lower_uses_java_to_lower_case() -> None:
    field = {"regex": "α:σ", "case": "lower", "syntax": "java"}
    assert _routes(field, "Α:Σ")  # Python would lowercase to "α:ς"
    assert not _routes({"regex": "α:σ", "case": "lower"}, "Α:Σ")


def test_java_ignore_case_is_unicode_case_insensitive() -> None:
    field = {"regex": "straße", "case": "ignore", "syntax": "java"}
    assert _routes(field, "STRAẞE")
    assert not _routes(field, "STRASSE")


def test_errors_name_the_path_and_the_java_rule() -> None:
    data = _config({"regex": ["ok", "a{,3}"], "syntax": "java"})
    data["routes"][0]["match"]["account"] = {"equals": "x", "syntax": "java"}
    data["routes"][0]["match"]["origin"] = {"regex": "x", "syntax": "perl"}
    with pytest.raises(ConfigError) as info:
        load_config(data)
    issues = {issue.path: issue.message for issue in info.value.issues}
    assert "Illegal repetition" in issues["routes[0].match.application.regex[1]"]
    assert "regex only" in issues["routes[0].match.account.syntax"]
    assert "routes[0].match.origin.syntax" in issues


def test_round_trip_keeps_the_dialect_and_re2_leaves_java_patterns_to_re() -> None:
    field = {"regex": r"\p{Lower}+", "case": "lower", "syntax": "java"}
    config = load_config(_config(field))
    native = config_to_dict(config)
    assert native["routes"][0]["match"]["application"] == {**field, "regex": [r"\p{Lower}+"]}
    assert config_to_dict(load_config(native)) == native
    plain = config_to_dict(load_config(_config({"regex": "a+"})))
    assert "syntax" not in plain["routes"][0]["match"]["application"]
    # RE2 has no lookbehind: a Java pattern compiles to re whatever the engine.
    field = {"regex": r"(?<=a|bc)x|ax", "syntax": "java"}
    router = Router(load_config(_config(field, regex_engine="re2")))
    assert router.select(Criteria(application="ax")).url == "http://hit.example.com"


def test_a_pattern_that_translates_to_huge_python_text_is_refused_not_compiled() -> None:
    # One \b is ~32,000 characters of Python lookarounds: 20 of them (a
    # 40-character pattern) took seconds to compile, 500 took minutes.
    assert _routes({"regex": r".*\bprod\b.*", "syntax": "java"}, "a prod b")
    with pytest.raises(ConfigError) as info:
        load_config(_config({"regex": ["ok", r"\b" * 20], "syntax": "java"}))
    ((issue,),) = [info.value.issues]
    assert issue.path == "routes[0].match.application.regex[1]"
    assert "too complex" in issue.message


def test_final_sigma_reads_only_the_sigmas_own_word() -> None:
    # Each sigma used to scan the whole value for its word's letters: quadratic,
    # a quarter second for one 4 KiB "Σ Σ Σ ..." request value under
    # case: lower, syntax: java (the converter's application and account rules).
    from selectors_lib._javaregex import _case

    class Counted(list[int]):
        reads = 0

        def __getitem__(self, i: Any) -> Any:
            Counted.reads += 1
            return super().__getitem__(i)

    text = "ΑΣ " * 600
    points = [ord(c) for c in text]
    segments = Counted(_case._segments(points))
    finals = [_case._final_sigma(points, i, segments) for i in range(1, len(text), 3)]
    assert finals == [True] * 600
    assert Counted.reads <= 8 * 600
    assert _case.to_lower_root(text) == "ας " * 600
