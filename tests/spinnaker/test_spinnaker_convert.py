"""The converter: native configs that route exactly as the Spinnaker services."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selectors_lib import ConfigError, Criteria, Router, load_config, load_router
from selectors_lib.spinnaker import (
    SelectableService,
    Selector,
    convert_base_urls,
    convert_gate,
    convert_orca,
    from_gate_config,
    from_orca_config,
    gate_header_mapping,
    selectable_service,
)

EXAMPLES = Path(__file__).parents[2] / "src/selectors_lib/spinnaker/examples"
KORK = "com.netflix.spinnaker.kork.web.selector."
LEGACY = "com.netflix.spinnaker.orca.clouddriver.config."
GATE = "com.netflix.spinnaker.gate.services.internal."

# -- strategies --------------------------------------------------------------------------------
# Small alphabets on purpose: configs and criteria must collide often for the
# property to exercise matches, ties and fallbacks, not just misses.

URLS = [f"https://cd-{n}.example.com" for n in ("a", "b", "c", "d")] + [
    "https://other.example.net:8443/cd-a"
]
TRICKY = [
    "\u00df",
    "SS",
    "ss",
    "\u0130",
    "i\u0307",
    "i",
    "I",
    "\u017f",
    "s",
    "S",
    "\u212a",
    "k",
    "K",
]
# Where Java and Python read a value or a pattern differently (see
# test_spinnaker_java_dialect): converted configs must keep Java's meaning.
JAVA_TRAPS = ["\u0391:\u03a3", "\u0391\u03a3", "caf\u00e9", "a\u2028b", "a\r", "\u0394x"]
TEXT = st.sampled_from(
    [
        "deck",
        "Deck",
        "DECK",
        "api",
        "pipeline",
        "orchestration",
        "Pipeline",
        "",
        *TRICKY,
        *JAVA_TRAPS,
    ]
)
PATTERNS = st.sampled_from(
    [
        "deck",
        "Deck",
        "(?i)deck",
        "de.*",
        "d.ck|api",
        ".*",
        "ss",
        "\u00df",
        "(?i)k",
        "k",
        "i\u0307",
        "[a-z]+",
        "s",
        "i\u0307a*",
        "[^x]*",
        r"\w+",
        r"\p{Alpha}+",
        "[a-z&&[^aeiou]]+",
        "prod-(?i)APP|de(?iu)CK",
        "\u03b1:\u03c3",
        "\u03b1\u03c2",
        "a.b",
        "a$",
        r"\p{IsGreek}.",
    ]
)
CAP = 4096
# Values at the length guard, some of which lower() lengthens past it
# ("\u0130" becomes two characters): the guard must count the value received.
LONG = st.sampled_from(
    [
        "a" * CAP,
        "a" * (CAP + 1),
        "A" * CAP,
        "\u0130" + "a" * (CAP - 1),
        "\u0130" * CAP,
        "\u0130" * (CAP // 2 + 1),
        "\u0130" + "a" * CAP,
    ]
)
VALUE = st.one_of(st.none(), TEXT, PATTERNS.filter(lambda p: "(" not in p and "|" not in p), LONG)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Mostly small priorities (ties, negatives); sometimes values near the ends of
# a Java int, where kork's "b - a" comparison overflows.
PRIORITY = st.one_of(
    st.integers(-3, 3),
    st.integers(-3, 3),
    st.sampled_from([INT_MIN, INT_MIN + 1, -(2**30), 2**30, INT_MAX - 1, INT_MAX]),
)


def listish(items: list[str], style: int) -> Any:
    """A list as Spring may hand it over: a list, or an index map with int or str keys."""
    if style == 0:
        return items
    pairs = list(enumerate(items))
    pairs.reverse()  # order must come from the index, not from the map
    return {(i if style == 1 else str(i)): v for i, v in pairs}


def class_name(simple: str, spelling: int) -> str:
    if simple == "ByUserOriginSelector":
        return (GATE + simple) if spelling else simple
    return (KORK, LEGACY, "")[spelling % 3] + simple


@st.composite
def selector_configs(draw: st.DrawFn) -> dict[str, Any] | None:
    kind = draw(
        st.sampled_from(
            [
                "none",
                "DefaultServiceSelector",
                "ByApplicationServiceSelector",
                "ByAccountServiceSelector",
                "ByExecutionTypeServiceSelector",
                "ByOriginServiceSelector",
                "ByAuthenticatedUserServiceSelector",
                "ByLocationServiceSelector",
                "ByCloudProviderServiceSelector",
                "ByUserOriginSelector",
            ]
        )
    )
    if kind == "none":
        return draw(st.sampled_from([None, {}]))
    config: dict[str, Any] = {"selectorClass": class_name(kind, draw(st.integers(0, 2)))}
    style = draw(st.integers(0, 2))
    values = st.lists(TEXT, min_size=1, max_size=3)
    if kind == "ByApplicationServiceSelector":
        config["applicationPattern"] = draw(PATTERNS)
    elif kind == "ByAccountServiceSelector":
        config["accountPattern"] = draw(PATTERNS)
    elif kind == "ByExecutionTypeServiceSelector":
        config["executionTypes"] = listish(draw(values), style)
    elif kind == "ByAuthenticatedUserServiceSelector":
        config["users"] = listish(draw(st.lists(PATTERNS, min_size=1, max_size=3)), style)
    elif kind == "ByLocationServiceSelector":
        config["locations"] = listish(draw(values), style)
    elif kind == "ByCloudProviderServiceSelector":
        config["cloudProviders"] = listish(draw(values), style)
    elif kind in ("ByOriginServiceSelector", "ByUserOriginSelector"):
        if draw(st.integers(0, 4)):
            config["origin"] = draw(TEXT)
        if kind == "ByOriginServiceSelector" and draw(st.booleans()):
            config["executionTypes"] = listish(draw(values), style)
    return config


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {"baseUrl": draw(st.sampled_from(URLS))}
    if draw(st.integers(0, 3)):
        entry["priority"] = draw(PRIORITY)
    config = draw(selector_configs())
    if config is not None or draw(st.booleans()):
        entry["config"] = config
    return entry


def base_url_lists(max_size: int = 6) -> st.SearchStrategy[Any]:
    return st.tuples(st.lists(entries(), min_size=1, max_size=max_size), st.integers(0, 2)).map(
        lambda pair: listish(pair[0], pair[1])
    )


criteria = st.builds(
    Criteria,
    application=VALUE,
    authenticated_user=VALUE,
    execution_type=VALUE,
    execution_id=VALUE,
    origin=VALUE,
    location=VALUE,
    account=VALUE,
    cloud_provider=VALUE,
)
# Explicit examples that must be tried whatever hypothesis draws.
FIXED = [
    Criteria(),
    Criteria(application="DECK", origin="Deck", execution_type="pipeline"),
    Criteria(origin="\u017f", execution_type="orchestration", account="\u212a"),
    Criteria(application="\u0130", authenticated_user="\u00df", location="SS"),
    # At the length guard: 4096 characters that lower() turns into 4097 or more.
    Criteria(application="\u0130" + "a" * (CAP - 1), account="\u0130" * (CAP // 2 + 1)),
    Criteria(account="\u0130" + "a" * (CAP - 1), authenticated_user="a" * (CAP + 1)),
]


# -- the equivalence property -----------------------------------------------------------------


def java_winner(service: SelectableService, criteria: Criteria) -> str:
    """kork's choice, written as the Java reads: filter, then reduce with minBy.

    ``stream().filter(supports).min((a, b) -> b.getPriority() - a.getPriority())``;
    ``min`` keeps the current element while ``compare(current, next) <= 0``, and
    the subtraction is 32-bit ``int`` arithmetic. No match: the first selector.
    """
    matching = [s for s in service.selectors if s.supports(criteria)]
    if not matching:
        return service.selectors[0].base_url

    def min_by(a: Selector, b: Selector) -> Selector:
        return a if ctypes.c_int32(b.priority - a.priority).value <= 0 else b

    return functools.reduce(min_by, matching).base_url


def convert_or_refuse(
    service: SelectableService, convert: Callable[[], dict[str, Any]]
) -> Router | None:
    """The converted router, or None when the converter (rightly) refused.

    It must refuse exactly when two priorities are more than a Java int apart,
    and only then.
    """
    priorities = [s.priority for s in service.selectors]
    try:
        config = convert()
    except ConfigError as error:
        refusal = str(error)
    else:
        return load_router(config)
    assert "more than 2147483647 apart" in refusal
    assert max(priorities) - min(priorities) > INT_MAX
    return None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(base_url_lists(), st.lists(criteria, min_size=1, max_size=12))
def test_converted_config_routes_identically(base_urls: Any, requests: list[Criteria]) -> None:
    spinnaker = selectable_service(base_urls)
    native = convert_or_refuse(spinnaker, lambda: convert_base_urls(base_urls))
    for c in [*requests, *FIXED]:
        chosen = spinnaker.select(c).url
        assert chosen == java_winner(spinnaker, c), (c, spinnaker.explain(c))
        if native is not None:
            assert chosen == native.select(c).url, (c, spinnaker.explain(c))


@st.composite
def gate_documents(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    service = draw(st.sampled_from(["clouddriver", "clouddriver", "orca"]))
    section: dict[str, Any] = {"baseUrl": draw(st.sampled_from(URLS))}
    if service == "clouddriver" and draw(st.booleans()):
        origins = draw(st.lists(TEXT, max_size=4, unique=True))
        section["config"] = {"dynamicEndpoints": {o: draw(st.sampled_from(URLS)) for o in origins}}
    else:
        section["shards"] = {"baseUrls": draw(base_url_lists(5))}
    document: dict[str, Any] = {"services": {service: section}}
    flags = draw(st.sampled_from([(True, True), (True, False), (False, True), (None, None)]))
    if flags[0] is not None:
        document["dynamic-routing"] = {"enabled": flags[0], "clouddriver": {"enabled": flags[1]}}
    return document, service


HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "X-RateLimit-App",
            "x-spinnaker-application",
            "X-SPINNAKER-EXECUTION-TYPE",
            "X-SPINNAKER-USER-ORIGIN",
            "X-SPINNAKER-ACCOUNT",
        ]
    ),
    TEXT,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(gate_documents(), st.lists(criteria, max_size=8), st.lists(HEADERS, max_size=8))
def test_converted_gate_config_routes_identically(
    doc: tuple[dict[str, Any], str], requests: list[Criteria], headers: list[dict[str, str]]
) -> None:
    document, service = doc
    gate = from_gate_config(document, service)
    native = convert_or_refuse(gate.service, lambda: convert_gate(document, service))
    if native is None:
        return
    for c in [*requests, *FIXED]:
        assert gate.select(c).url == native.select(c).url, (c, gate.explain(c))
    mapping = gate_header_mapping()
    for h in [*headers, {"X-RateLimit-App": "deck"}, {}]:
        assert gate.select_request(h).url == native.select(mapping.criteria(h)).url


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    base_url_lists(4), st.sampled_from(["readonly", "writeonly"]), st.lists(criteria, max_size=8)
)
def test_converted_orca_config_routes_identically(
    base_urls: Any, role: str, requests: list[Criteria]
) -> None:
    document = {"clouddriver": {"baseUrl": URLS[0], role: {"baseUrls": base_urls}}}
    orca = from_orca_config(document, role)
    native = convert_or_refuse(orca, lambda: convert_orca(document, role))
    for c in [*requests, *FIXED]:
        assert orca.select(c).url == java_winner(orca, c)
        if native is not None:
            assert orca.select(c).url == native.select(c).url


# -- what the converter emits ---------------------------------------------------------------------


def test_mapping_of_each_selector_kind() -> None:
    native = convert_base_urls(
        [
            {
                "baseUrl": URLS[0],
                "priority": -2,
                "config": {
                    "selectorClass": "ByApplicationServiceSelector",
                    "applicationPattern": "Big.*",
                },
            },
            {
                "baseUrl": URLS[1],
                "config": {
                    "selectorClass": LEGACY + "ByAccountServiceSelector",
                    "accountPattern": "prod",
                },
            },
            {
                "baseUrl": URLS[2],
                "config": {
                    "selectorClass": "ByExecutionTypeServiceSelector",
                    "executionTypes": {1: "b", 0: "a"},
                },
            },
            {
                "baseUrl": URLS[3],
                "config": {"selectorClass": "ByOriginServiceSelector", "origin": "Deck"},
            },
            {
                "baseUrl": URLS[0],
                "config": {"selectorClass": "ByAuthenticatedUserServiceSelector", "users": ["u.*"]},
            },
            {
                "baseUrl": URLS[1],
                "config": {"selectorClass": "ByLocationServiceSelector", "locations": ["l"]},
            },
            {
                "baseUrl": URLS[2],
                "config": {
                    "selectorClass": "ByCloudProviderServiceSelector",
                    "cloudProviders": ["c"],
                },
            },
            {
                "baseUrl": URLS[3],
                "config": {"selectorClass": GATE + "ByUserOriginSelector", "origin": "api"},
            },
        ]
    )
    matches = [(r.get("priority"), r.get("match")) for r in native["routes"]]
    assert matches == [
        (-2, {"application": {"regex": "Big.*", "case": "lower", "syntax": "java"}}),
        (1, {"account": {"regex": "prod", "case": "lower", "syntax": "java"}}),
        # Spinnaker reads the map's values in the map's order.
        (1, {"execution_type": {"equals": ["b", "a"]}}),
        (
            1,
            {
                "origin": {"equals": "Deck", "case": "ignore"},
                "execution_type": {"equals": ["pipeline", "orchestration"]},
            },
        ),
        (1, {"authenticated_user": {"regex": ["u.*"], "syntax": "java"}}),
        (1, {"location": {"equals": ["l"]}}),
        (1, {"cloud_provider": {"equals": ["c"]}}),
        (1, {"origin": {"equals": "api"}}),
        (None, None),
    ]
    assert native["routes"][-1]["default"] is True
    # No default selector: the first entry is the fallback.
    assert native["endpoints"][native["routes"][-1]["target"]] == URLS[0]
    load_config(native)


def test_default_selector_becomes_the_default_and_shadowed_rules_are_dropped() -> None:
    notes: list[str] = []
    native = convert_base_urls(
        [
            {
                "baseUrl": URLS[0],
                "priority": 5,
                "config": {"selectorClass": "ByLocationServiceSelector", "locations": ["x"]},
            },
            {"baseUrl": URLS[1], "priority": 3},
            {
                "baseUrl": URLS[2],
                "priority": 3,
                "config": {"selectorClass": "ByLocationServiceSelector", "locations": ["y"]},
            },
            {"baseUrl": URLS[3], "priority": 2},
            {
                "baseUrl": URLS[0],
                "priority": 4,
                "config": {"selectorClass": "ByOriginServiceSelector"},
            },
        ],
        notes=notes,
    )
    assert [r["name"] for r in native["routes"]] == ["entry-0-by-location", "fallback"]
    assert native["endpoints"][native["routes"][-1]["target"]] == URLS[1]
    assert len(notes) == 3
    assert "baseUrls[2]" in notes[0]
    assert "can never win" in notes[0]
    assert "baseUrls[3]" in notes[1]
    assert "baseUrls[4]" in notes[2]
    assert "never matches" in notes[2]
    assert "dropped" in native["routes"][-1]["description"]


def test_gate_without_dynamic_routing_converts_to_one_default() -> None:
    document = yaml.safe_load((EXAMPLES / "gate.yml").read_text())
    document.pop("dynamic-routing.enabled")
    notes: list[str] = []
    native = convert_gate(document, notes=notes)
    assert [r["name"] for r in native["routes"]] == ["fallback"]
    assert native["endpoints"] == {"spin-clouddriver": "http://spin-clouddriver.spinnaker:7002"}
    assert len(notes) == 2
    assert all("dynamic routing is off" in n for n in notes)


def test_endpoint_ids_stay_unique_and_readable() -> None:
    urls = [
        "https://cd.east.example.com",
        "https://cd.west.example.com",
        "https://cd.west.example.com:8443",
        "https://solo.example.com",
    ]
    native = convert_base_urls(
        [{"baseUrl": u, "priority": -i} for i, u in enumerate(urls)]
        + [
            {
                "baseUrl": u,
                "priority": 9,
                "config": {"selectorClass": "ByLocationServiceSelector", "locations": [u]},
            }
            for u in urls
        ]
    )
    assert native["endpoints"] == {
        "cd.east.example.com": urls[0],
        "cd.west.example.com": urls[1],
        "cd.west.example.com:8443": urls[2],
        "solo": urls[3],
    }


def test_converter_rejects_what_the_loader_rejects() -> None:
    with pytest.raises(ConfigError):
        convert_base_urls([])
    with pytest.raises(ConfigError):
        convert_orca({"clouddriver": {}})
    with pytest.raises(ConfigError):
        convert_gate({"services": {}})


@pytest.mark.parametrize(("name", "role"), [("orca.yml", "readonly"), ("orca.yml", "writeonly")])
def test_examples_convert_and_load_without_warnings(name: str, role: str) -> None:
    document = yaml.safe_load((EXAMPLES / name).read_text())
    config = load_config(convert_orca(document, role))
    assert config.warnings == ()


def test_long_values_are_cut_off_on_both_sides_alike() -> None:
    base_urls = [
        {"baseUrl": URLS[0]},
        {
            "baseUrl": URLS[1],
            "priority": 2,
            "config": {"selectorClass": "ByApplicationServiceSelector", "applicationPattern": "a+"},
        },
    ]
    spinnaker = selectable_service(base_urls)
    native = load_router(convert_base_urls(base_urls))
    for n in (4096, 4097):
        c = Criteria(application="A" * n)
        assert spinnaker.select(c).url == native.select(c).url == URLS[1 if n == 4096 else 0]


HOSTS = st.lists(st.sampled_from(["a", "b", "a-b", "x1"]), min_size=1, max_size=3).map(".".join)


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["http", "https"]),
            HOSTS,
            st.sampled_from(["", ":8080", ":8443"]),
            st.sampled_from(["", "/", "/api"]),
        ).map(lambda t: f"{t[0]}://{t[1]}{t[2]}{t[3]}"),
        min_size=1,
        max_size=8,
    )
)
def test_every_distinct_url_gets_its_own_endpoint(urls: list[str]) -> None:
    base_urls = [
        {
            "baseUrl": url,
            "priority": 2,
            "config": {"selectorClass": "ByLocationServiceSelector", "locations": [str(i)]},
        }
        for i, url in enumerate(urls)
    ]
    native = convert_base_urls(base_urls)
    assert sorted(native["endpoints"].values()) == sorted(set(urls))
    router = load_router(native)
    for i, url in enumerate(urls):
        # The first entry with this location decides; locations are unique here.
        assert router.select(Criteria(location=str(i))).url == url


def test_priorities_a_java_int_apart_are_refused_naming_both_entries() -> None:
    base_urls = [
        {"baseUrl": "http://low.x", "priority": -2},
        {"baseUrl": "http://max.x", "priority": INT_MAX},
    ]
    # kork's wrapped comparison picks the -2 entry; no native priorities can say so.
    assert selectable_service(base_urls).select(Criteria()).url == "http://low.x"
    with pytest.raises(ConfigError) as info:
        convert_base_urls(base_urls)
    (issue,) = info.value.issues
    assert issue.path == "baseUrls[1].priority"
    assert "entry 1 (http://max.x, priority 2147483647)" in issue.message
    assert "entry 0 (http://low.x, priority -2)" in issue.message
    with pytest.raises(ConfigError):
        convert_orca({"clouddriver": {"readonly": {"baseUrls": base_urls}}})


def test_wide_priorities_convert_while_the_comparison_cannot_overflow() -> None:
    # Exactly 2**31 - 1 apart: the subtraction still fits an int.
    narrow = [{"baseUrl": URLS[0], "priority": -1}, {"baseUrl": URLS[1], "priority": INT_MAX - 1}]
    assert load_router(convert_base_urls(narrow)).select(Criteria()).url == URLS[1]
    # A selector that can never match never takes part in a comparison.
    never = {"selectorClass": "ByOriginServiceSelector"}
    dead = [{"baseUrl": URLS[0], "priority": INT_MIN}, {"baseUrl": URLS[1], "config": never}]
    assert load_router(convert_base_urls(dead)).select(Criteria()).url == URLS[0]
    # Gate never fills location: such a selector is dropped, not refused.
    gate = {
        "services": {
            "orca": {
                "baseUrl": URLS[0],
                "shards": {
                    "baseUrls": [
                        {"baseUrl": URLS[0], "priority": INT_MIN},
                        {
                            "baseUrl": URLS[1],
                            "priority": INT_MAX,
                            "config": {
                                "selectorClass": "ByLocationServiceSelector",
                                "locations": ["x"],
                            },
                        },
                    ]
                },
            }
        }
    }
    assert load_router(convert_gate(gate, "orca")).select(Criteria(location="x")).url == URLS[0]


def test_expanding_lowercase_is_cut_off_on_both_sides_alike() -> None:
    base_urls = [
        {"baseUrl": URLS[0]},
        {
            "baseUrl": URLS[1],
            "priority": 2,
            "config": {"selectorClass": "ByApplicationServiceSelector", "applicationPattern": ".*"},
        },
    ]
    spinnaker = selectable_service(base_urls)
    native = load_router(convert_base_urls(base_urls))
    for value, url in [("\u0130" + "a" * 4095, URLS[1]), ("\u0130" + "a" * 4096, URLS[0])]:
        c = Criteria(application=value)
        assert spinnaker.select(c).url == native.select(c).url == url
