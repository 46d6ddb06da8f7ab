"""The shared validation toolkit: bounded messages, exact paths, no crash on any value."""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import ConfigIssue
from selectors_lib._validate import (
    Checker,
    _parsed_url_problem,
    join,
    kind,
    show,
    url_problem,
)


def alias_bomb(levels: int = 8) -> list[Any]:
    """What YAML anchors give: 9**levels leaves if walked, a few objects in memory."""
    node: list[Any] = ["x"] * 9
    for _ in range(levels - 1):
        node = [node] * 9
    return node


HUGE = 10**5000  # str() raises ValueError above 4300 digits; float() overflows


# -- show, kind, join ---------------------------------------------------------------------


def test_show_is_bounded_for_hostile_values() -> None:
    assert show(HUGE) == f"<an integer of {HUGE.bit_length()} bits>"
    assert show(-HUGE) == f"<an integer of {HUGE.bit_length()} bits>"
    assert show(2**40) == "1099511627776"
    assert show("tcp") == "'tcp'"
    assert len(show("x" * 100_000)) < 50
    tracemalloc.start()
    try:
        shown = show(alias_bomb())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shown.startswith("[[[...]")
    assert len(shown) < 500
    assert peak < 200_000  # the full repr would be gigabytes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "nothing (null)"),
        (True, "a boolean"),
        pytest.param(HUGE, "an integer", id="huge"),
        (1.5, "a number"),
        ("", "a string"),
        ([], "a list"),
        ({}, "a mapping"),
        (b"x", "bytes"),
    ],
)
def test_kind(value: object, expected: str) -> None:
    assert kind(value) == expected


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("", "routes", "routes"),
        ("endpoints", "ro-1", "endpoints.ro-1"),
        ("endpoints", "a b", 'endpoints."a b"'),
        ("x", "1a", 'x."1a"'),
        ("x", 'q"', 'x."q\\""'),
    ],
)
def test_join_quotes_what_is_not_a_plain_name(path: str, key: str, expected: str) -> None:
    assert join(path, key) == expected


@given(st.text(max_size=20))
def test_join_round_trips_every_key(key: str) -> None:
    last = join("p", key).removeprefix("p.")
    assert (json.loads(last) if last.startswith('"') else last) == key


# -- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "schemes", "problem"),
    [
        ("https://h:8443/x", None, None),
        ("HTTP://h", None, None),
        ("redis://m:6379", ("redis", "rediss", "unix"), None),
        ("unix:///tmp/redis.sock", ("redis", "rediss", "unix"), None),
        ("unix://", ("redis", "unix"), "missing socket path"),
        # a socket path is no host where unix:// was not asked for
        ("unix:///tmp/s", None, "missing host"),
        ("http://h", ("redis", "rediss"), "expected a redis:// or rediss:// URL"),
        ("", None, "must not be empty"),
        ("http://" + "h" * 2048, None, "longer than 2048 characters"),
        ("not a url", None, "missing scheme (e.g. https://)"),
        ("http://", None, "missing host"),
        ("http://h:99999", None, "Port out of range 0-65535"),
        ("http://h:x", None, "Port could not be cast to integer value as 'x'"),
        ("http://h/a b", None, "contains white space"),
        ("redis:// m", ("redis",), "contains white space"),
    ],
)
def test_url_problem(url: str, schemes: tuple[str, ...] | None, problem: str | None) -> None:
    assert url_problem(url, schemes) == problem


_URL_CHARS = "aZ09-._~/%:@[] ?#+\t\né\ud800"
url_texts = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(
            ["http", "HTTPS", "unix", "Unix", "redis", "h2c", "a+b.c-d", "1h", "", "é"]
        ),
        st.sampled_from(["://", ":", "//", ":///", ""]),
        st.text(alphabet="aZ09-._~", max_size=6) | st.text(alphabet=_URL_CHARS, max_size=6),
        st.sampled_from(["", ":", ":0", ":80", ":065535", ":65535", ":65536", ":99999", ":8x"]),
        st.sampled_from(["", "/", "/a/b.c", "/%41~", "/a b", "?q=1", "#f", "/é"])
        | st.text(alphabet=_URL_CHARS, max_size=5),
    ),
)


@settings(max_examples=400)
@given(
    url_texts.filter(bool),  # the parser is asked only about non-empty text
    st.sampled_from([None, ("http", "https"), ("redis", "rediss", "unix"), ("unix",)]),
)
def test_url_fast_path_gives_the_parsers_verdict(url: str, schemes: tuple[str, ...] | None) -> None:
    # The fast path only ever says "usable": it must say so exactly when
    # urlsplit-based validation does, never hide a problem it would report.
    assert url_problem(url, schemes) == _parsed_url_problem(url, schemes)


def test_checker_url_messages() -> None:
    check = Checker()
    assert check.url("https://h", "a") == "https://h"
    assert check.url(HUGE, "b") is None
    assert check.url("", "c") is None
    assert check.url("x" * 5000, "d") is None
    assert check.url("http://h", "e", ("redis",)) is None
    assert check.issues == [
        ConfigIssue("b", "expected a URL, got an integer"),
        ConfigIssue("c", "must not be empty"),
        ConfigIssue("d", "longer than 2048 characters"),
        ConfigIssue("e", "invalid URL 'http://h': expected a redis:// URL"),
    ]


# -- numbers ------------------------------------------------------------------------------


def test_integer() -> None:
    check = Checker()
    assert check.integer(5, "a", 1, 10) == 5
    assert check.integer(True, "b", 0, 1) is None
    assert check.integer(HUGE, "c", 0, 10) is None
    assert check.integer(-HUGE, "d", 0, 10) is None
    assert check.integer(2.0, "e", 0, 10) is None
    bits = HUGE.bit_length()
    assert check.issues == [
        ConfigIssue("b", "expected an integer, got a boolean"),
        ConfigIssue("c", f"must be between 0 and 10, got <an integer of {bits} bits>"),
        ConfigIssue("d", f"must be between 0 and 10, got <an integer of {bits} bits>"),
        ConfigIssue("e", "expected an integer, got a number"),
    ]


def test_number_ranges_and_hostile_values() -> None:
    check = Checker()
    assert check.number(3, "a", 0, 3600, exclusive_low=True) == 3.0
    assert isinstance(check.number(3, "a", 0, 3600), float)
    assert check.number(0.5, "a", 0, 1) == 0.5
    assert check.number(0, "a", 0, 1) == 0.0
    assert check.issues == []
    for value in (0, -1, HUGE, -HUGE, math.nan, math.inf, -math.inf, 3600.5):
        assert check.number(value, "s", 0, 3600, exclusive_low=True, what="seconds") is None
    assert check.number("1", "s", 0, 1, what="a number of seconds") is None
    assert check.number(False, "s", 0, 1) is None
    assert check.number(-0.1, "n", 0, 1) is None
    messages = [i.message for i in check.issues]
    assert messages[0] == "must be more than 0 and at most 3600, got 0"
    assert messages[2].endswith(f"got <an integer of {HUGE.bit_length()} bits>")
    assert messages[4:7] == [
        "must be more than 0 and at most 3600, got nan",
        "must be more than 0 and at most 3600, got inf",
        "must be more than 0 and at most 3600, got -inf",
    ]
    assert messages[8:] == [
        "expected a number of seconds, got a string",
        "expected a number, got a boolean",
        "must be at least 0 and at most 1, got -0.1",
    ]


# -- structure --------------------------------------------------------------------------------


def test_mapping_reports_unknown_and_non_string_keys_and_keeps_the_rest() -> None:
    check = Checker()
    raw = {"a": 1, "zz": 2, 3: 4, "b c": 5}
    assert check.mapping(raw, "p", ("a", "b")) == {"a": 1}
    assert check.mapping(raw, "", ("a", "zz", "b c")) is not None
    assert check.mapping([], "q", ("a",)) is None
    assert check.issues == [
        ConfigIssue("p.zz", "unknown key; expected one of a, b"),
        ConfigIssue("p", "keys must be strings, got an integer 3"),
        ConfigIssue('p."b c"', "unknown key; expected one of a, b"),
        ConfigIssue("", "keys must be strings, got an integer 3"),
        ConfigIssue("q", "expected a mapping, got a list"),
    ]
    good = {"a": 1}
    assert check.mapping(good, "p", ("a",)) is good


def test_strings_and_lists() -> None:
    check = Checker()
    assert check.strings("x", "a") == ("x",)
    assert check.strings(["x", "y"], "a") == ("x", "y")
    assert check.strings(["x", 1, None], "b") is None
    assert check.strings([], "c") is None
    assert check.strings({}, "d") is None
    assert check.nonempty_list([1], "e") == [1]
    assert check.nonempty_list([], "f") is None
    assert check.nonempty_list("x", "g", "a list of ids") is None
    assert check.string("x" * 11, "h", max_len=10) is None
    assert check.string("", "i") is None
    assert [str(i) for i in check.issues] == [
        "b[1]: expected a string, got an integer",
        "b[2]: expected a string, got nothing (null)",
        "c: must not be an empty list",
        "d: expected a string or a list of strings, got a mapping",
        "f: must not be empty",
        "g: expected a list of ids, got a string",
        "h: longer than 10 characters",
        "i: must not be empty",
    ]


def test_one_of_and_boolean() -> None:
    check = Checker()
    assert check.one_of("re2", "a", ("re", "re2")) == "re2"
    assert check.one_of("RE", "b", ("re", "re2")) is None
    assert check.one_of(alias_bomb(), "c", ("re",)) is None
    assert check.one_of({"unhashable": []}, "d", ("re",)) is None
    assert check.boolean(False, "e") is False
    assert check.boolean("yes", "f") is None
    assert check.boolean(0, "g") is None
    assert [i.path for i in check.issues] == ["b", "c", "d", "f", "g"]
    assert check.issues[0].message == "expected one of re, re2, got 'RE'"
    assert check.issues[1].message.startswith("expected one of re, got [[[...]")
    assert check.issues[3].message == "expected true or false, got a string"


def test_unique_name_points_at_the_later_item_and_the_first() -> None:
    check = Checker()
    seen: dict[str, int] = {}
    for index, name in enumerate(["a", "b", "a", "a"]):
        check.unique_name(seen, name, "health.probes", index, "probe")
    assert seen == {"a": 0, "b": 1}
    assert [str(i) for i in check.issues] == [
        "health.probes[2].name: duplicate probe name 'a' (also probes[0])",
        "health.probes[3].name: duplicate probe name 'a' (also probes[0])",
    ]


def test_nothing_new_and_warnings() -> None:
    check = Checker()
    with check.nothing_new() as ok:
        check.warn("w", "careful")
    assert ok[0]
    with check.nothing_new() as ok:
        check.error("e", "wrong")
    assert not ok[0]
    assert check.warnings == [ConfigIssue("w", "careful")]
    assert check.issues == [ConfigIssue("e", "wrong")]


# -- any value: an issue or a valid result, never an exception --------------------------------

# Drawn by name: hypothesis prints a failing example, and repr() of these is
# gigabytes or (for the integers) raises.
SPECIAL = {"huge": HUGE, "huge_negative": -HUGE, "bomb": alias_bomb(), "long": "x" * 3000}


def _special(name: str) -> object:
    return SPECIAL[name]


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.just(2**64)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["http://h", "redis://h:1", "unix:///s"])
    | st.sampled_from(sorted(SPECIAL)).map(_special),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300)
@given(values)
def test_every_check_reports_or_returns_never_raises(value: object) -> None:
    check = Checker()
    seconds = check.number(value, "sec", 0, 3600, exclusive_low=True)
    url = check.url(value, "u")
    results = [
        check.mapping(value, "m", ("a",)),
        check.nonempty_list(value, "l"),
        check.string(value, "s"),
        check.strings(value, "ss"),
        check.one_of(value, "o", ("a", "b")),
        check.boolean(value, "b"),
        check.integer(value, "i", 0, 100),
        check.number(value, "n", 0, 1),
        check.url(value, "r", ("redis",)),
        seconds,
        url,
    ]
    failed = {issue.path.split(".")[0].split("[")[0] for issue in check.issues}
    for path, result in zip(
        ["m", "l", "s", "ss", "o", "b", "i", "n", "r", "sec", "u"], results, strict=True
    ):
        if result is None:
            assert path in failed, path
    for issue in check.issues:
        assert 0 < len(issue.message) < 500
    if seconds is not None:
        assert math.isfinite(seconds)
        assert 0 < seconds <= 3600
    if url is not None:
        assert url_problem(url) is None
