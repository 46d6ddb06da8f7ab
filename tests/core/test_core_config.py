"""Loading configuration: every format, every error, all errors at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from selectors_lib import ConfigError, Criteria, config_to_dict, load_config, load_router

YAML = """
endpoints:
  ro-1: https://ro-1.example.net
  ro-2: https://ro-2.example.net
routes:
  - name: ui
    priority: 10
    match:
      origin: {equals: deck, case: ignore}
    target: {endpoints: [ro-1, ro-2], hash_on: [authenticated_user]}
  - name: default
    default: true
    target: ro-1
"""

TOML = """
[endpoints]
ro-1 = "https://ro-1.example.net"
ro-2 = "https://ro-2.example.net"

[[routes]]
name = "ui"
priority = 10
match.origin = { equals = "deck", case = "ignore" }
target = { endpoints = ["ro-1", "ro-2"], hash_on = ["authenticated_user"] }

[[routes]]
name = "default"
default = true
target = "ro-1"
"""


def as_json() -> str:
    import yaml

    return json.dumps(yaml.safe_load(YAML))


@pytest.mark.parametrize(
    ("suffix", "text"), [(".yaml", YAML), (".yml", YAML), (".toml", TOML), ("json", None)]
)
def test_every_format_loads_the_same(tmp_path: Path, suffix: str, text: str | None) -> None:
    if text is None:
        suffix, text = ".json", as_json()
    path = tmp_path / f"routes{suffix}"
    path.write_text(text, encoding="utf-8")
    router = load_router(path)
    assert router.config.source == str(path)
    decision = router.explain(Criteria(origin="DECK", authenticated_user="alice"))
    assert decision.rule == "ui"
    assert decision.endpoint.id in {"ro-1", "ro-2"}
    assert router.select(Criteria()).id == "ro-1"


def test_string_path_and_mapping(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(YAML)
    assert load_config(str(path)).rules == load_config(yaml.safe_load(YAML)).rules


def test_dump_round_trips(tmp_path: Path) -> None:
    import yaml

    config = load_config(yaml.safe_load(YAML))
    dumped = config_to_dict(config)
    again = load_config(dumped)
    assert again.rules == config.rules
    assert again.default == config.default
    assert dumped["routes"][0]["match"] == {"origin": {"equals": ["deck"], "case": "ignore"}}


def errors(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert isinstance(info.value, ValueError)
    return [str(issue) for issue in info.value.issues]


def base(**route: Any) -> dict[str, Any]:
    rule = {"name": "r", "target": "e", **route}
    return {
        "endpoints": {"e": "http://e.test"},
        "routes": [rule, {"name": "d", "default": True, "target": "e"}],
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            base(match={"application": {"regex": "(bad"}}),
            "routes[0].match.application.regex: invalid regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            base(match={"application": {"regex": ["ok", "[z-a]"]}}),
            "routes[0].match.application.regex[1]: invalid regular expression: bad character range z-a at position 1",
        ),
        (
            base(match={"aplication": "x"}),
            "routes[0].match.aplication: unknown key; expected one of application, authenticated_user, execution_type, execution_id, origin, location, account, cloud_provider, attributes",
        ),
        (base(priority="high"), "routes[0].priority: expected an integer, got a string"),
        (base(priority=True), "routes[0].priority: expected an integer, got a boolean"),
        (base(priority=1.5), "routes[0].priority: expected an integer, got a number"),
        (
            base(priority=2**40),
            "routes[0].priority: must be between -2147483648 and 2147483647, got 1099511627776",
        ),
        (base(target={"endpoints": []}), "routes[0].target.endpoints: must not be empty"),
        (
            base(target={"endpoints": ["nope"]}),
            "routes[0].target.endpoints[0]: unknown endpoint 'nope'; known: e",
        ),
        (
            base(target={"endpoints": [{"url": "not a url"}]}),
            "routes[0].target.endpoints[0].url: invalid URL 'not a url': missing scheme (e.g. https://)",
        ),
        (
            base(target={"endpoints": [{"url": "http://"}]}),
            "routes[0].target.endpoints[0].url: invalid URL 'http://': missing host",
        ),
        (
            base(target={"endpoints": [{"url": "http://h:99999"}]}),
            "routes[0].target.endpoints[0].url: invalid URL 'http://h:99999': Port out of range 0-65535",
        ),
        (
            base(target={"endpoints": [{"id": "e", "weight": 0}]}),
            "routes[0].target.endpoints[0].weight: must be between 1 and 1000000, got 0",
        ),
        (
            base(target={"endpoints": ["e", "e"]}),
            "routes[0].target.endpoints[1]: endpoint 'e' is already in this pool (endpoints[0])",
        ),
        (
            base(target={"endpoints": ["e"], "algorithm": "magic"}),
            "routes[0].target.algorithm: expected one of ",
        ),
        (
            base(target={"endpoints": ["e"], "hash_on": ["nobody"]}),
            "routes[0].target.hash_on[0]: unknown source 'nobody'",
        ),
        (
            base(target={"endpoints": ["e"], "missing_key": "guess"}),
            "routes[0].target.missing_key: expected one of first, round_robin, reject, got 'guess'",
        ),
        (
            base(target={"endpoints": ["e"], "panic_threshold": 2}),
            "routes[0].target.panic_threshold: expected a number from 0 to 1, got 2",
        ),
        (
            base(match={"origin": {"equals": "a", "regex": "b"}}),
            "routes[0].match.origin: give exactly one of equals, regex or present (got equals and regex)",
        ),
        (
            base(match={"origin": {"equals": "a", "case": "upper"}}),
            "routes[0].match.origin.case: expected one of sensitive, lower, ignore, got 'upper'",
        ),
        (base(match={"origin": []}), "routes[0].match.origin: must not be an empty list"),
        (
            base(match={"origin": [1]}),
            "routes[0].match.origin[0]: expected a string, got an integer",
        ),
        (
            base(match={"attributes": {"x-t": {"present": "yes"}}}),
            "routes[0].match.attributes.x-t.present: expected true or false, got a string",
        ),
        (
            base(colour="red"),
            "routes[0].colour: unknown key; expected one of name, description, priority, default, match, target",
        ),
        (base(name=""), "routes[0].name: must not be empty"),
        (
            {
                "routes": [{"name": "d", "default": True, "target": "e"}],
                "endpoints": {"e": "ftp//x"},
            },
            "endpoints.e: invalid URL 'ftp//x': missing scheme (e.g. https://)",
        ),
        ({"routes": "all"}, "routes: expected a list, got a string"),
        ({}, "routes: missing: a configuration needs at least a default route"),
        ([], "expected a mapping, got a list"),
        (
            {
                "version": 2,
                "routes": [
                    {"name": "d", "default": True, "target": {"endpoints": [{"url": "http://x"}]}}
                ],
            },
            "version: unsupported version 2; expected 1",
        ),
        (
            {
                "settings": {"regex_engine": "pcre"},
                "routes": [
                    {"name": "d", "default": True, "target": {"endpoints": [{"url": "http://x"}]}}
                ],
            },
            "settings.regex_engine: expected one of re, re2, got 'pcre'",
        ),
    ],
)
def test_each_error_names_its_path(data: Any, expected: str) -> None:
    found = errors(data)
    assert any(issue.startswith(expected) for issue in found), found


def test_missing_default() -> None:
    data = {"endpoints": {"e": "http://e.test"}, "routes": [{"name": "r", "target": "e"}]}
    assert errors(data) == ["routes: no default route: add one route with 'default: true'"]


def test_two_defaults_and_duplicate_names() -> None:
    data = {
        "endpoints": {"e": "http://e.test"},
        "routes": [
            {"name": "d", "default": True, "target": "e"},
            {"name": "d", "default": True, "target": "e"},
        ],
    }
    assert errors(data) == [
        "routes[1].name: duplicate rule name 'd' (also routes[0])",
        "routes[1].default: a second default route ('d'); exactly one is allowed"
        " (the first is routes[0])",
    ]


def test_attribute_names_differing_only_in_case_are_one_attribute() -> None:
    # Requests' attribute names are lowercased, so X-T and x-t name one value:
    # loaded as two fields, the rule needed it to be "a" and "b" at once and
    # the shadowing analysis warned that a later x-t rule could never win.
    data = {
        "endpoints": {"e": "http://e.test"},
        "routes": [
            {"name": "r", "match": {"attributes": {"X-T": "a", "x-t": "b"}}, "target": "e"},
            {"name": "d", "default": True, "target": "e"},
        ],
    }
    assert errors(data) == [
        "routes[0].match.attributes.x-t: the same attribute as 'X-T': names ignore case"
    ]


def test_duplicate_names_are_reported_even_in_broken_rules() -> None:
    # All errors at once: fixing the other errors must not reveal a duplicate.
    data = {
        "endpoints": {"e": "http://e.test"},
        "routes": [
            {"name": "r", "priority": "high", "target": "e"},
            {"name": "r", "target": "nope"},
            {"name": 5, "target": "e"},
            {"name": "d", "default": True, "target": "e"},
            {"name": "r", "default": "yes", "target": "e"},
        ],
    }
    assert errors(data) == [
        "routes[0].priority: expected an integer, got a string",
        "routes[1].target.endpoints[0]: unknown endpoint 'nope'; known: e",
        "routes[1].name: duplicate rule name 'r' (also routes[0])",
        "routes[2].name: expected a string, got an integer",
        "routes[4].default: expected true or false, got a string",
        "routes[4].name: duplicate rule name 'r' (also routes[0])",
    ]


def test_default_has_no_priority_or_match() -> None:
    data = {
        "endpoints": {"e": "http://e.test"},
        "routes": [{"name": "d", "default": True, "priority": 3, "match": {}, "target": "e"}],
    }
    found = errors(data)
    assert any(f.startswith("routes[0].priority: the default route") for f in found)
    assert any(f.startswith("routes[0].match: the default route") for f in found)


def test_all_errors_at_once() -> None:
    data = {
        "endpoints": {"e": "http://e.test"},
        "routes": [
            {"name": "a", "priority": "x", "target": "e"},
            {"name": "b", "match": {"application": {"regex": "("}}, "target": "e"},
            {"name": "c", "target": {"endpoints": []}},
            {"name": "d", "default": True, "target": "nope"},
        ],
    }
    found = errors(data)
    assert [f.split(":")[0] for f in found] == [
        "routes[0].priority",
        "routes[1].match.application.regex",
        "routes[2].target.endpoints",
        "routes[3].target.endpoints[0]",
    ]
    with pytest.raises(ConfigError, match="4 configuration errors"):
        load_config(data)


def test_conflicting_urls_for_one_id() -> None:
    data = base(target={"endpoints": [{"id": "x", "url": "http://one.test"}]})
    data["routes"][1]["target"] = {"endpoints": [{"id": "x", "url": "http://two.test"}]}
    assert errors(data) == [
        "routes[1].target.endpoints[0]: endpoint 'x' has URL 'http://two.test' here but 'http://one.test' at routes[0].target.endpoints[0]"
    ]


class TestFiles:
    def test_unknown_suffix(self, tmp_path: Path) -> None:
        path = tmp_path / "r.ini"
        path.write_text("")
        with pytest.raises(ConfigError, match=r"unknown file type '\.ini'"):
            load_config(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read file"):
            load_config(tmp_path / "absent.yaml")

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "r.json"
        path.write_bytes(b'{"routes": "\xff\xfe"}')
        with pytest.raises(ConfigError, match="not UTF-8"):
            load_config(path)

    @pytest.mark.parametrize(
        ("suffix", "text"), [(".json", "{"), (".toml", "a = "), (".yaml", "a: [")]
    )
    def test_syntax_errors(self, tmp_path: Path, suffix: str, text: str) -> None:
        path = tmp_path / f"r{suffix}"
        path.write_text(text)
        with pytest.raises(ConfigError, match="syntax error"):
            load_config(path)

    def test_deep_nesting(self, tmp_path: Path) -> None:
        path = tmp_path / "r.json"
        path.write_text("[" * 100_000 + "]" * 100_000)
        with pytest.raises(ConfigError):
            load_config(path)

    def test_error_names_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "r.yaml"
        path.write_text("routes: []\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value).startswith(str(path))


def test_reject_without_hash_on_is_an_error() -> None:
    data = base(
        target={
            "endpoints": [{"id": "e"}, {"id": "f", "url": "http://f.test"}],
            "missing_key": "reject",
        }
    )
    assert errors(data) == [
        "routes[0].target.missing_key: 'reject' with no hash_on would reject every request; add hash_on sources"
    ]


class TestWarnings:
    def test_huge_ring(self) -> None:
        data = base(
            target={
                "endpoints": ["e", {"id": "f", "url": "http://f.test"}],
                "algorithm": "ring",
                "options": {"min_ring_size": 140_000},
                "hash_on": ["application"],
            }
        )
        messages = [str(w) for w in load_config(data).warnings]
        assert any(m.startswith("routes[0].target.options: the ring has") for m in messages), (
            messages
        )

    def test_shadowed_rule(self) -> None:
        data = {
            "endpoints": {"e": "http://e.test"},
            "routes": [
                {"name": "all-deck", "priority": 5, "match": {"origin": "deck"}, "target": "e"},
                {
                    "name": "deck-app",
                    "priority": 1,
                    "match": {"origin": "deck", "application": "x"},
                    "target": "e",
                },
                {"name": "catch-all", "priority": 9, "target": "e"},
                {"name": "d", "default": True, "target": "e"},
            ],
        }
        config = load_config(data)
        shadowed = {w.path: w.message for w in config.warnings}
        assert set(shadowed) == {"routes[0]", "routes[1]"}
        assert "rule 'deck-app' can never win: rule 'catch-all'" in shadowed["routes[1]"]

    def test_not_shadowed_when_narrower_rule_comes_first(self) -> None:
        data = {
            "endpoints": {"e": "http://e.test"},
            "routes": [
                {
                    "name": "narrow",
                    "priority": 5,
                    "match": {"origin": "deck", "application": "x"},
                    "target": "e",
                },
                {
                    "name": "wide",
                    "priority": 5,
                    "match": {"origin": ["deck", "api"]},
                    "target": "e",
                },
                {"name": "d", "default": True, "target": "e"},
            ],
        }
        assert load_config(data).warnings == ()

    def test_risky_pattern_and_never_matching_value(self) -> None:
        config = load_config(
            base(
                match={
                    "application": {"regex": "(a+)+$"},
                    "account": {"equals": "Prod", "case": "lower"},
                }
            )
        )
        messages = [str(w) for w in config.warnings]
        assert any("nests quantifiers" in m for m in messages)
        assert any("has capitals" in m and "never matches" in m for m in messages)

    def test_re2_engine_has_no_backtracking_warning(self) -> None:
        data = base(match={"application": {"regex": "(a+)+$"}})
        data["settings"] = {"regex_engine": "re2"}
        config = load_config(data)
        assert config.warnings == ()
        router = load_router(data)
        assert router.select(Criteria(application="a" * 100_000 + "!")).id == "e"
