"""Each v1 selector kind, exactly as kork's Java classes behave."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
import yaml

from selectors_lib import ConfigError, Criteria
from selectors_lib.spinnaker import SELECTOR_CLASSES, resolve_selector_class, selectable_service

KORK = "com.netflix.spinnaker.kork.web.selector."
LEGACY = "com.netflix.spinnaker.orca.clouddriver.config."
GATE = "com.netflix.spinnaker.gate.services.internal."
HIT = "https://hit.example.com"
MISS = "https://miss.example.com"


def routes_to_hit(config: Mapping[str, object], criteria: Criteria) -> bool:
    """Whether a selector with ``config`` at priority 10 takes ``criteria``.

    The first entry is a default at priority 1, so a non-matching selector
    leaves the request on MISS.
    """
    svc = selectable_service(
        [{"baseUrl": MISS, "priority": 1}, {"baseUrl": HIT, "priority": 10, "config": config}]
    )
    return svc.select(criteria).url == HIT


def app(pattern: str) -> dict[str, object]:
    return {"selectorClass": "ByApplicationServiceSelector", "applicationPattern": pattern}


# -- class names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        KORK + "ByApplicationServiceSelector",
        LEGACY + "ByApplicationServiceSelector",
        "ByApplicationServiceSelector",
    ],
)
def test_every_spelling_of_a_kork_class_resolves(spelling: str) -> None:
    config = {"selectorClass": spelling, "applicationPattern": "deck"}
    assert routes_to_hit(config, Criteria(application="deck"))
    assert not routes_to_hit(config, Criteria(application="orca"))


def test_every_kork_class_resolves_under_both_packages_and_simply() -> None:
    for simple in SELECTOR_CLASSES:
        if simple == "ByUserOriginSelector":
            continue
        assert resolve_selector_class(KORK + simple) == simple
        assert resolve_selector_class(LEGACY + simple) == simple
        assert resolve_selector_class(simple) == simple


def test_gate_user_origin_selector_spellings() -> None:
    assert resolve_selector_class(GATE + "ByUserOriginSelector") == "ByUserOriginSelector"
    assert resolve_selector_class("ByUserOriginSelector") == "ByUserOriginSelector"
    # Gate's class does not live in kork.
    assert resolve_selector_class(KORK + "ByUserOriginSelector") is None
    assert resolve_selector_class(GATE + "ByApplicationServiceSelector") is None


def test_unknown_class_is_a_config_error_naming_entry_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        selectable_service(
            [{"baseUrl": HIT, "config": {"selectorClass": KORK + "ByPhaseOfMoonSelector"}}]
        )
    (issue,) = info.value.issues
    assert issue.path == "baseUrls[0].config.selectorClass"
    assert "entry 0 (https://hit.example.com)" in issue.message
    assert "ByPhaseOfMoonSelector" in issue.message


def test_class_names_are_case_sensitive_like_java() -> None:
    assert resolve_selector_class("byapplicationserviceselector") is None


# -- Default ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        None,
        {},
        {"selectorClass": KORK + "DefaultServiceSelector"},
        {"selectorClass": "DefaultServiceSelector"},
    ],
)
def test_default_selector_matches_everything(config: dict[str, object] | None) -> None:
    assert routes_to_hit(config or {}, Criteria())
    assert routes_to_hit(config or {}, Criteria(application="anything", origin="api"))


# -- ByApplication / ByAccount ----------------------------------------------------------------


def test_application_is_lowercased_before_matching() -> None:
    assert routes_to_hit(app("deck"), Criteria(application="DECK"))
    assert routes_to_hit(app("deck"), Criteria(application="Deck"))


def test_pattern_with_capitals_never_matches_without_inline_flag() -> None:
    # The value is lowercased, the pattern is not: "Deck" can never match.
    assert not routes_to_hit(app("Deck"), Criteria(application="Deck"))
    assert not routes_to_hit(app("Deck"), Criteria(application="deck"))
    assert routes_to_hit(app("(?i)Deck"), Criteria(application="deck"))
    assert routes_to_hit(app("(?i)Deck"), Criteria(application="DECK"))


def test_application_pattern_must_match_fully() -> None:
    assert not routes_to_hit(app("big"), Criteria(application="bigapp"))
    assert not routes_to_hit(app("app"), Criteria(application="bigapp"))
    assert routes_to_hit(app("big.*"), Criteria(application="bigapp"))
    assert not routes_to_hit(app("a|b"), Criteria(application="ab"))
    assert routes_to_hit(app("a|b"), Criteria(application="b"))


def test_absent_application_never_matches() -> None:
    assert not routes_to_hit(app(".*"), Criteria())
    assert routes_to_hit(app(".*"), Criteria(application=""))


def test_unicode_lowercasing_follows_the_lowercase_mapping() -> None:
    # "İ" lowercases to "i" + COMBINING DOT ABOVE (two characters), as in Java.
    assert routes_to_hit(app("i\u0307"), Criteria(application="\u0130"))
    assert not routes_to_hit(app("i"), Criteria(application="\u0130"))
    # The Kelvin sign lowercases to a plain "k".
    assert routes_to_hit(app("k"), Criteria(application="\u212a"))


def test_account_selector_has_the_same_rule_on_account() -> None:
    config = {"selectorClass": KORK + "ByAccountServiceSelector", "accountPattern": "prod-.*"}
    assert routes_to_hit(config, Criteria(account="PROD-east"))
    assert not routes_to_hit(config, Criteria(account="test-prod-1"))
    assert not routes_to_hit(config, Criteria(application="prod-app"))
    capital = {"selectorClass": "ByAccountServiceSelector", "accountPattern": "Prod-.*"}
    assert not routes_to_hit(capital, Criteria(account="Prod-east"))


def test_overlong_values_never_reach_a_pattern() -> None:
    assert routes_to_hit(app("a*"), Criteria(application="a" * 4096))
    assert not routes_to_hit(app("a*"), Criteria(application="a" * 4097))


# -- ByExecutionType -------------------------------------------------------------------------


def test_execution_type_is_exact_membership() -> None:
    config = {"selectorClass": "ByExecutionTypeServiceSelector", "executionTypes": ["pipeline"]}
    assert routes_to_hit(config, Criteria(execution_type="pipeline"))
    assert not routes_to_hit(config, Criteria(execution_type="PIPELINE"))
    assert not routes_to_hit(config, Criteria(execution_type="pipe.*"))
    assert not routes_to_hit(config, Criteria())


# -- ByOrigin --------------------------------------------------------------------------------


def origin_cfg(origin: str | None = "deck", types: object = None) -> dict[str, object]:
    config: dict[str, object] = {"selectorClass": KORK + "ByOriginServiceSelector"}
    if origin is not None:
        config["origin"] = origin
    if types is not None:
        config["executionTypes"] = types
    return config


def test_origin_ignores_case_and_types_default_to_pipeline_and_orchestration() -> None:
    config = origin_cfg()
    assert routes_to_hit(config, Criteria(origin="DECK", execution_type="pipeline"))
    assert routes_to_hit(config, Criteria(origin="Deck", execution_type="orchestration"))
    assert not routes_to_hit(config, Criteria(origin="deck"))  # null execution type
    assert not routes_to_hit(config, Criteria(origin="deck", execution_type="Pipeline"))
    assert not routes_to_hit(config, Criteria(origin="api", execution_type="pipeline"))
    assert not routes_to_hit(config, Criteria(execution_type="pipeline"))


def test_origin_execution_types_can_be_narrowed() -> None:
    config = origin_cfg(types=["orchestration"])
    assert routes_to_hit(config, Criteria(origin="deck", execution_type="orchestration"))
    assert not routes_to_hit(config, Criteria(origin="deck", execution_type="pipeline"))


def test_origin_compares_like_java_equals_ignore_case() -> None:
    # Character by character: the long s and Kelvin sign fold, sharp s never expands.
    assert routes_to_hit(origin_cfg("s"), Criteria(origin="\u017f", execution_type="pipeline"))
    assert routes_to_hit(origin_cfg("k"), Criteria(origin="\u212a", execution_type="pipeline"))
    assert not routes_to_hit(origin_cfg("ss"), Criteria(origin="\u00df", execution_type="pipeline"))
    # Simple one-to-one mappings: dotted capital I and dotless i both equal i
    # (Java: toLowerCase('\u0130') is 'i', toUpperCase('\u0131') is 'I').
    for value in ("\u0130", "\u0131", "I"):
        assert routes_to_hit(origin_cfg("i"), Criteria(origin=value, execution_type="pipeline"))
    assert not routes_to_hit(origin_cfg("i"), Criteria(origin="i\u0307", execution_type="pipeline"))


def test_origin_selector_without_origin_never_matches_and_warns() -> None:
    config = origin_cfg(origin=None)
    assert not routes_to_hit(config, Criteria(origin="deck", execution_type="pipeline"))
    svc = selectable_service([{"baseUrl": HIT, "config": config}])
    assert any("never matches" in w.message for w in svc.warnings)


# -- ByAuthenticatedUser ---------------------------------------------------------------------


def test_users_are_case_sensitive_full_matches_of_any_pattern() -> None:
    config = {
        "selectorClass": KORK + "ByAuthenticatedUserServiceSelector",
        "users": ["alice@example\\.com", "svc-.*"],
    }
    assert routes_to_hit(config, Criteria(authenticated_user="alice@example.com"))
    assert routes_to_hit(config, Criteria(authenticated_user="svc-deploy"))
    assert not routes_to_hit(config, Criteria(authenticated_user="Alice@example.com"))
    assert not routes_to_hit(config, Criteria(authenticated_user="x-svc-deploy"))
    assert not routes_to_hit(config, Criteria())


# -- ByLocation / ByCloudProvider --------------------------------------------------------------


def location(value: str) -> Criteria:
    return Criteria(location=value)


def cloud_provider(value: str) -> Criteria:
    return Criteria(cloud_provider=value)


@pytest.mark.parametrize(
    ("name", "key", "make"),
    [
        ("ByLocationServiceSelector", "locations", location),
        ("ByCloudProviderServiceSelector", "cloudProviders", cloud_provider),
    ],
)
def test_membership_selectors_are_exact(
    name: str, key: str, make: Callable[[str], Criteria]
) -> None:
    config = {"selectorClass": KORK + name, key: ["us-east-1", "titus"]}
    assert routes_to_hit(config, make("titus"))
    assert routes_to_hit(config, make("us-east-1"))
    assert not routes_to_hit(config, make("Titus"))
    assert not routes_to_hit(config, Criteria())


# -- Gate ByUserOrigin --------------------------------------------------------------------------


def test_gate_user_origin_is_case_sensitive() -> None:
    config = {"selectorClass": GATE + "ByUserOriginSelector", "origin": "deck"}
    assert routes_to_hit(config, Criteria(origin="deck"))
    assert not routes_to_hit(config, Criteria(origin="Deck"))
    assert not routes_to_hit(config, Criteria())
    assert not routes_to_hit({"selectorClass": "ByUserOriginSelector"}, Criteria(origin="deck"))


# -- lists as Spring hands them over ------------------------------------------------------------

YAML_LIST = """
- baseUrl: https://miss.example.com
- baseUrl: https://hit.example.com
  priority: 10
  config:
    selectorClass: com.netflix.spinnaker.kork.web.selector.ByExecutionTypeServiceSelector
    executionTypes: {types}
"""


@pytest.mark.parametrize(
    "types",
    [
        "[pipeline, orchestration]",
        "\n      - pipeline\n      - orchestration",
        "{0: pipeline, 1: orchestration}",
        "{1: orchestration, 0: pipeline}",
        "{'0': pipeline, '1': orchestration}",
        "\n      '1': orchestration\n      '0': pipeline",
    ],
)
def test_lists_load_from_yaml_as_lists_or_index_maps(types: str) -> None:
    svc = selectable_service(yaml.safe_load(YAML_LIST.format(types=types)))
    assert svc.select(Criteria(execution_type="orchestration")).url == HIT
    assert svc.select(Criteria(execution_type="pipeline")).url == HIT
    assert svc.select(Criteria(execution_type="other")).url == MISS


def test_users_as_index_map_keep_every_pattern() -> None:
    config = {"selectorClass": "ByAuthenticatedUserServiceSelector", "users": {1: "bob", 0: "al.*"}}
    assert routes_to_hit(config, Criteria(authenticated_user="bob"))
    assert routes_to_hit(config, Criteria(authenticated_user="alice"))


@pytest.mark.parametrize(
    ("value", "accepted", "rejected"),
    [
        # kork reads ((Map) config.get(key)).values(): every value, whatever the keys.
        ({0: "a", 2: "b"}, ["a", "b"], ["c"]),
        ({"first": "a", "second": "b"}, ["a", "b"], ["first"]),
        ({5: "b", "x": "a", 0: "c"}, ["a", "b", "c"], ["x"]),
        # 0 and "0" are one Spring key: the later value replaces the earlier.
        ({0: "a", "0": "b", 1: "c"}, ["b", "c"], ["a"]),
        ({True: "a"}, ["a"], ["true"]),
    ],
)
def test_config_lists_read_every_map_value_like_kork(
    value: object, accepted: list[str], rejected: list[str]
) -> None:
    for key in ("executionTypes", "locations", "cloudProviders"):
        name = {
            "executionTypes": "ByExecutionTypeServiceSelector",
            "locations": "ByLocationServiceSelector",
            "cloudProviders": "ByCloudProviderServiceSelector",
        }[key]
        field = {
            "executionTypes": "execution_type",
            "locations": "location",
            "cloudProviders": "cloud_provider",
        }[key]
        config = {"selectorClass": name, key: value}
        for v in accepted:
            assert routes_to_hit(config, Criteria(**{field: v})), (key, v)
        for v in rejected:
            assert not routes_to_hit(config, Criteria(**{field: v})), (key, v)
    users = {"selectorClass": "ByAuthenticatedUserServiceSelector", "users": value}
    assert all(routes_to_hit(users, Criteria(authenticated_user=v)) for v in accepted)
    origin = {"selectorClass": "ByOriginServiceSelector", "origin": "o", "executionTypes": value}
    assert all(routes_to_hit(origin, Criteria(origin="o", execution_type=v)) for v in accepted)


@pytest.mark.parametrize(
    ("key", "items", "field"),
    [
        ("locations", [True], "location"),
        ("locations", [True, "eu"], "location"),
        ("executionTypes", [{"a": "b"}, 1], "execution_type"),
        ("cloudProviders", {0: 8, 1: "aws"}, "cloud_provider"),
    ],
)
def test_non_string_list_items_load_and_never_match(key: str, items: object, field: str) -> None:
    # Java keeps the raw objects and compares them with the request's string.
    selector = {
        "locations": "ByLocationServiceSelector",
        "executionTypes": "ByExecutionTypeServiceSelector",
        "cloudProviders": "ByCloudProviderServiceSelector",
    }[key]
    config = {"selectorClass": selector, key: items}
    svc = selectable_service([{"baseUrl": MISS}, {"baseUrl": HIT, "priority": 5, "config": config}])
    assert svc.warnings
    assert svc.warnings[0].path.startswith(f"baseUrls[1].config.{key}[")
    for text in ("True", "true", "1", "8", "{'a': 'b'}"):
        assert svc.select(Criteria(**{field: text})).url == MISS
    strings = [
        i for i in (items.values() if isinstance(items, dict) else items) if isinstance(i, str)
    ]
    for text in strings:
        assert svc.select(Criteria(**{field: text})).url == HIT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must not be an empty list"),
        ({}, "must not be an empty list"),
        ("pipeline", "expected a list, got a string"),
    ],
)
def test_bad_lists_are_config_errors(value: object, message: str) -> None:
    config = {"selectorClass": "ByExecutionTypeServiceSelector", "executionTypes": value}
    with pytest.raises(ConfigError) as info:
        selectable_service([{"baseUrl": HIT, "config": config}])
    assert message in str(info.value)
    assert "entry 0 (https://hit.example.com)" in str(info.value)
    assert info.value.issues[0].path.startswith("baseUrls[0].config.executionTypes")


# -- required keys and types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("ByApplicationServiceSelector", "applicationPattern"),
        ("ByAccountServiceSelector", "accountPattern"),
        ("ByExecutionTypeServiceSelector", "executionTypes"),
        ("ByAuthenticatedUserServiceSelector", "users"),
        ("ByLocationServiceSelector", "locations"),
        ("ByCloudProviderServiceSelector", "cloudProviders"),
    ],
)
def test_missing_required_key_names_entry_and_key(name: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        selectable_service(
            [{"baseUrl": MISS}, {"baseUrl": HIT, "config": {"selectorClass": KORK + name}}]
        )
    (issue,) = info.value.issues
    assert issue.path == f"baseUrls[1].config.{key}"
    assert "entry 1 (https://hit.example.com)" in issue.message
    assert f"missing required key '{key}'" in issue.message


def test_invalid_regex_is_reported_with_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        selectable_service(
            [
                {"baseUrl": HIT, "config": app("(unclosed")},
                {
                    "baseUrl": MISS,
                    "config": {
                        "selectorClass": "ByAuthenticatedUserServiceSelector",
                        "users": ["ok", "[z-a]"],
                    },
                },
            ]
        )
    paths = [i.path for i in info.value.issues]
    assert paths == ["baseUrls[0].config.applicationPattern", "baseUrls[1].config.users[1]"]
    assert all("invalid regular expression" in i.message for i in info.value.issues)


@pytest.mark.parametrize(
    "config",
    [
        {"selectorClass": "ByApplicationServiceSelector", "applicationPattern": ["a"]},
        {"selectorClass": "ByOriginServiceSelector", "origin": 1},
        {"selectorClass": "ByUserOriginSelector", "origin": ["deck"]},
        {"selectorClass": 42},
        "ByApplicationServiceSelector",
    ],
)
def test_wrong_value_types_are_config_errors(config: object) -> None:
    with pytest.raises(ConfigError) as info:
        selectable_service([{"baseUrl": HIT, "config": config}])
    assert "entry 0 (https://hit.example.com)" in str(info.value)
    assert info.value.issues[0].path.startswith("baseUrls[0].config")


def test_unused_config_keys_warn_but_load() -> None:
    svc = selectable_service([{"baseUrl": HIT, "config": app("x") | {"applicationPatern": "y"}}])
    assert [w.path for w in svc.warnings] == ["baseUrls[0].config.applicationPatern"]


@pytest.mark.parametrize(
    ("pattern", "hit", "miss"),
    [
        ("[a-z&&[^aeiou]]+", "bcd", "bad"),
        ("[[a-z]]+", "abc", "[a"),
        (r"\p{Alpha}+", "abc", "a1"),
        (r"\Qa.b\E", "a.b", "axb"),
        ("(?<name>a)b", "ab", "a"),
        (r"a\z", "a", "a\n"),
        (r"a\vb", "a\u2028b", "a\x0cc"),
        (r"[\v ]+", "\n \r", "a"),
        ("prod-(?i)APP", "prod-app", "prod2app"),
        (r"\w+", "abc_1", "caf\u00e9"),
        (r"\0141+", "aa", "\x0c1"),
        ("(?<=a|bc)x|bcx|ax", "ax", "cx"),
    ],
)
def test_java_syntax_means_what_java_means(pattern: str, hit: str, miss: str) -> None:
    # Valid Java that Python's re refuses or reads otherwise loads, with Java's
    # meaning (checked against the JDK itself in test_spinnaker_java_dialect).
    for config in (
        app(pattern),
        {"selectorClass": "ByAuthenticatedUserServiceSelector", "users": [pattern]},
    ):
        svc = selectable_service(
            [{"baseUrl": MISS}, {"baseUrl": HIT, "priority": 10, "config": config}]
        )
        field = "application" if "applicationPattern" in config else "authenticated_user"
        assert svc.select(Criteria(**{field: hit})).url == HIT
        assert svc.select(Criteria(**{field: miss})).url == MISS


@pytest.mark.parametrize(
    ("pattern", "rule"),
    [
        ("a{", "Illegal repetition"),
        ("a{,3}", "Illegal repetition"),
        ("(?P<n>a)(?P=n)", "Unknown inline modifier"),
        ("\\0", "Illegal octal escape"),
        ("(?a)x", "Unknown inline modifier"),
        ("(?#c)x", "Unknown inline modifier"),
        ("\\U00000061", "Illegal/unsupported escape"),
        ("x{1,2", "Unclosed counted closure"),
    ],
)
def test_python_only_syntax_is_refused_naming_the_java_rule(pattern: str, rule: str) -> None:
    with pytest.raises(ConfigError, match="invalid regular expression") as info:
        selectable_service([{"baseUrl": HIT, "config": app(pattern)}])
    assert rule in str(info.value)
    assert info.value.issues[0].path == "baseUrls[0].config.applicationPattern"


@pytest.mark.parametrize("pattern", [r"a\\vb", r"(?i)prod-app", r"prod-(?i:app)", r"\x0b"])
def test_look_alikes_of_rejected_syntax_still_load(pattern: str) -> None:
    # An escaped backslash before v, leading and scoped flags are portable.
    assert selectable_service([{"baseUrl": HIT, "config": app(pattern)}]).warnings == ()


def test_length_guard_looks_at_the_value_before_lowercasing() -> None:
    # "\u0130" lowercases to two characters: 4096 characters in, 4097 after
    # lower(). The guard (like the native FieldMatch's) counts the value received.
    value = "\u0130" + "a" * 4095
    assert len(value) == 4096
    assert len(value.lower()) == 4097
    assert routes_to_hit(app(".*"), Criteria(application=value))
    account = {"selectorClass": "ByAccountServiceSelector", "accountPattern": ".*"}
    assert routes_to_hit(account, Criteria(account=value))
    assert not routes_to_hit(account, Criteria(account=value + "a"))


def test_portable_patterns_load_without_warnings() -> None:
    svc = selectable_service([{"baseUrl": HIT, "config": app(r"(?i)[a-z0-9_.-]{1,20}\d?")}])
    assert svc.warnings == ()


def test_backtracking_pattern_warns() -> None:
    svc = selectable_service([{"baseUrl": HIT, "config": app("(a+)+b")}])
    assert any("backtrack" in w.message for w in svc.warnings)
