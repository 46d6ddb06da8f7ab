"""The v2 parameter selector: lowest priority wins, regex: values, config overlay."""

from __future__ import annotations

import pytest
import yaml

from selectors_lib import ConfigError
from selectors_lib.spinnaker import ParameterSelectionError, ParameterService, parameter_service

BAKERY = """
bakery:
  baseUrl: http://bakery.example.com
  altBakeryApiEnabled: false
  timeoutMs: 3000
  baseUrls:
  - baseUrl: http://alt-bakery.us-west.example.com
    priority: 1
    config:
      altBakeryApiEnabled: true
      maxItemsCached: 10
    parameters:
    - name: region
      values:
      - us-west-1
      - us-west-2
  - baseUrl: http://alt-bakery.other.example.com
    priority: 2
    config:
      altBakeryApiEnabled: true
    parameters:
    - name: artifactType
      values: [RPM]
    - name: baseOS
      values: [centOS]
    - name: user
      values:
      - regex:^[a-f].+@example.com
"""


def bakery() -> ParameterService:
    section = yaml.safe_load(BAKERY)["bakery"]
    defaults = {k: v for k, v in section.items() if k not in ("baseUrl", "baseUrls")}
    return parameter_service(section["baseUrls"], section["baseUrl"], defaults)


def test_any_value_of_one_parameter_selects() -> None:
    chosen = bakery().select({"region": ["eu-1", "us-west-2"]})
    assert chosen.url == "http://alt-bakery.us-west.example.com"
    assert not chosen.default
    assert dict(chosen.config) == {
        "altBakeryApiEnabled": True,
        "maxItemsCached": 10,
        "timeoutMs": 3000,
    }
    assert [p.name for p in chosen.parameters] == ["region"]


def test_all_parameters_must_be_satisfied_and_extras_are_ignored() -> None:
    svc = bakery()
    full = {"artifactType": ["RPM"], "baseOS": ["centOS"], "user": ["alice@example.com"]}
    assert svc.select(full).url == "http://alt-bakery.other.example.com"
    assert svc.select(full | {"extra": ["x"]}).url == "http://alt-bakery.other.example.com"
    assert svc.select(full | {"baseOS": ["ubuntu"]}).default
    assert svc.select({"artifactType": ["RPM"], "baseOS": ["centOS"]}).default


def test_regex_is_a_full_match_after_the_first_colon() -> None:
    svc = bakery()
    base = {"artifactType": ["RPM"], "baseOS": ["centOS"]}
    assert svc.select(base | {"user": ["bob@example.com"]}).url.startswith("http://alt-bakery.o")
    assert svc.select(base | {"user": ["zed@example.com"]}).default
    assert svc.select(base | {"user": ["alice@example.com.evil"]}).default
    svc = parameter_service(
        [
            {
                "baseUrl": "http://a.example.com",
                "parameters": [{"name": "x", "values": ["regex:a:b.*"]}],
            }
        ],
        "http://d.example.com",
    )
    assert svc.select({"x": ["a:bc"]}).url == "http://a.example.com"
    assert svc.select({"x": ["bc"]}).default


def test_names_and_plain_values_are_case_sensitive() -> None:
    svc = bakery()
    assert svc.select({"Region": ["us-west-1"]}).default
    assert svc.select({"region": ["US-WEST-1"]}).default


def test_empty_input_or_no_match_gives_the_default_config() -> None:
    svc = bakery()
    for params in ({}, None, {"region": ["nowhere"]}):
        chosen = svc.select(params)
        assert chosen.default
        assert chosen.url == "http://bakery.example.com"
        assert dict(chosen.config) == {"altBakeryApiEnabled": False, "timeoutMs": 3000}
        assert chosen.parameters == ()


def test_lowest_priority_wins_and_ties_keep_config_order() -> None:
    def entry(url: str, priority: int) -> dict[str, object]:
        return {
            "baseUrl": url,
            "priority": priority,
            "parameters": [{"name": "app", "values": ["regex:.*"]}],
        }

    svc = parameter_service(
        [
            entry("http://high.example.com", 9),
            entry("http://tie-1.example.com", -1),
            entry("http://tie-2.example.com", -1),
        ],
        "http://d.example.com",
    )
    assert svc.select({"app": ["x"]}).url == "http://tie-1.example.com"
    assert svc.urls[:3] == [
        "http://tie-1.example.com",
        "http://tie-2.example.com",
        "http://high.example.com",
    ]


def test_empty_parameters_match_any_non_empty_input() -> None:
    # Java: configured.containsAll(empty list) is true.
    svc = parameter_service(
        [
            {
                "baseUrl": "http://any.example.com",
                "priority": 5,
                "config": {"k": "v"},
                "parameters": [],
            }
        ],
        "http://d.example.com",
        {"k": "default", "other": 1},
    )
    chosen = svc.select({"whatever": []})
    assert chosen.url == "http://any.example.com"
    assert chosen.config is not None
    assert dict(chosen.config) == {"k": "v", "other": 1}
    assert svc.select({}).default


def test_entry_without_parameters_throws_where_java_does() -> None:
    svc = parameter_service(
        [
            {
                "baseUrl": "http://a.example.com",
                "priority": 1,
                "parameters": [{"name": "n", "values": ["x"]}],
            },
            {"baseUrl": "http://b.example.com", "priority": 2},
        ],
        "http://d.example.com",
    )
    assert [w.path for w in svc.warnings] == ["baseUrls[1].parameters"]
    assert svc.select({"n": ["x"]}).url == "http://a.example.com"  # never reached
    assert svc.select({}).default  # empty input never reaches an entry
    with pytest.raises(ParameterSelectionError, match="NullPointerException"):
        svc.select({"n": ["y"]})


def test_non_string_values_and_missing_values_load_and_never_match() -> None:
    svc = parameter_service(
        [
            {"baseUrl": "http://a.example.com", "parameters": [{"name": "n", "values": [8]}]},
            {"baseUrl": "http://b.example.com", "parameters": [{"name": "n"}]},
            {
                "baseUrl": "http://c.example.com",
                "parameters": [{"name": "n", "values": [True, "8"]}],
            },
        ],
        "http://d.example.com",
    )
    paths = [w.path for w in svc.warnings]
    assert paths == [
        "baseUrls[0].parameters[0].values[0]",
        "baseUrls[1].parameters[0].values",
        "baseUrls[2].parameters[0].values[0]",
    ]
    assert svc.select({"n": ["8"]}).url == "http://c.example.com"
    assert svc.select({"n": [8]}).default  # type: ignore[list-item]


def test_absent_config_with_empty_defaults_is_null_like_java() -> None:
    svc = parameter_service(
        [{"baseUrl": "http://a.example.com", "parameters": []}], "http://d.example.com"
    )
    assert svc.select({"n": ["x"]}).config is None


def test_results_are_frozen_copies() -> None:
    defaults = {"nested": {"a": 1}}
    svc = parameter_service([], "http://d.example.com", defaults)
    chosen = svc.select({})
    defaults["nested"]["a"] = 2
    assert chosen.config["nested"] == {"a": 1}
    with pytest.raises(TypeError):
        chosen.config["new"] = 1  # type: ignore[index]


def test_index_maps_and_a_bare_string_value() -> None:
    svc = parameter_service(
        {
            0: {
                "baseUrl": "http://a.example.com",
                "parameters": {0: {"name": "region", "values": {"1": "b", "0": "a"}}},
            }
        },
        "http://d.example.com",
    )
    assert svc.select({"region": "b"}).url == "http://a.example.com"
    assert svc.select({"region": ["a"]}).url == "http://a.example.com"


def test_bad_entries_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        parameter_service(
            [
                {"baseUrl": "http://a.example.com", "parameters": [{"values": ["x"]}]},
                {"baseUrl": "http://b.example.com", "parameters": [{"name": "n", "values": []}]},
                {
                    "baseUrl": "http://c.example.com",
                    "parameters": [{"name": "n", "values": ["regex:("]}],
                },
                {"baseUrl": "http://e.example.com", "parameters": [{"name": 8, "values": ["x"]}]},
                {"priority": 1},
            ],
            "nope",
        )
    paths = [i.path for i in info.value.issues]
    assert paths == [
        "defaultUrl",
        "baseUrls[0].parameters[0].name",
        "baseUrls[1].parameters[0].values",
        "baseUrls[2].parameters[0].values[0]",
        "baseUrls[3].parameters[0].name",
        "baseUrls[4].baseUrl",
    ]
    assert "entry 2 (http://c.example.com)" in str(info.value)


@pytest.mark.parametrize(
    ("entry_config", "defaults", "expected"),
    [
        # defaultConfig.forEach((k, v) -> config.putIfAbsent(k, v)): null counts as absent.
        ({"timeoutMs": None}, {"timeoutMs": 3000}, {"timeoutMs": 3000}),
        ({"timeoutMs": 10}, {"timeoutMs": 3000}, {"timeoutMs": 10}),
        ({"other": None}, {"timeoutMs": 3000}, {"other": None, "timeoutMs": 3000}),
        ({"timeoutMs": None}, {"timeoutMs": None}, {"timeoutMs": None}),
        ({"flag": False}, {"flag": True}, {"flag": False}),
    ],
)
def test_entry_config_gets_defaults_like_put_if_absent(
    entry_config: dict[str, object], defaults: dict[str, object], expected: dict[str, object]
) -> None:
    svc = parameter_service(
        [
            {
                "baseUrl": "http://a.example.com",
                "config": entry_config,
                "parameters": [{"name": "region", "values": ["a"]}],
            }
        ],
        "http://d.example.com",
        defaults,
    )
    assert dict(svc.select({"region": "a"}).config) == expected
    assert dict(svc.select({"region": "z"}).config) == defaults


@pytest.mark.parametrize("pattern", [r"regex:a{,3}", "regex:(?P<n>x)"])
def test_v2_regex_values_refuse_what_java_refuses(pattern: str) -> None:
    with pytest.raises(ConfigError, match="invalid regular expression"):
        parameter_service(
            [
                {
                    "baseUrl": "http://a.example.com",
                    "parameters": [{"name": "n", "values": [pattern]}],
                }
            ],
            "http://d.example.com",
        )
