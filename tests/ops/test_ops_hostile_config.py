"""Malformed configurations: ConfigError is the only exception, and every issue has a path.

The path rule: an issue's ``path`` is empty only for a problem with the
document as a whole (the file cannot be read or parsed, is not UTF-8, gives a
key twice in one mapping, has an unknown extension, is nested too deeply, is
not a mapping, or its top level has a non-string key, which no path can spell). Every other issue has a path whose
parent exists in the document, e.g. ``routes[1].target.endpoints[0]`` (a
shorthand ``target: r1`` is addressed in its long form, ``target.endpoints[0]``).
"""

from __future__ import annotations

import contextlib
import json
import re
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selectors_lib import ConfigError, ConfigIssue, load_config
from selectors_lib._config import read_source

WHOLE_DOCUMENT = (
    "expected a mapping",
    "keys must be strings",
    "nested too deeply",
    "syntax error",
    "not UTF-8",
    "unknown file type",
    "cannot read file",
    "duplicate key",  # named by line and column: the parsers give no path
)

KNOWN_KEYS = (
    "version",
    "settings",
    "endpoints",
    "routes",
    "health",
    "name",
    "description",
    "priority",
    "default",
    "match",
    "target",
    "equals",
    "regex",
    "present",
    "case",
    "attributes",
    "application",
    "account",
    "origin",
    "execution_id",
    "hash_on",
    "algorithm",
    "missing_key",
    "panic_threshold",
    "options",
    "url",
    "id",
    "weight",
    "cache_size",
    "regex_engine",
    "max_value_length",
    "vnodes",
    ").split(",
)


def base() -> dict[str, Any]:
    """A valid configuration using most features (rebuilt fresh for each example)."""
    return {
        "version": 1,
        "settings": {"cache_size": 100, "regex_engine": "re", "max_value_length": 256},
        "endpoints": {"r1": "http://r1:80", "r2": {"url": "https://r2"}, "r3": "http://r3"},
        "routes": [
            {
                "name": "tenants",
                "priority": 10,
                "match": {
                    "application": {"regex": ["big.*", "huge"], "case": "lower"},
                    "attributes": {"x-tenant": ["a", "b"], "x-region": {"present": True}},
                },
                "target": {
                    "endpoints": ["r1", {"id": "r2", "weight": 3}, {"url": "http://r4:1"}],
                    "algorithm": "ring",
                    "hash_on": ["execution_id", "attributes.x-tenant"],
                    "missing_key": "round_robin",
                    "panic_threshold": 0.25,
                },
            },
            {
                "name": "ui",
                "match": {"origin": {"equals": "deck", "case": "ignore"}},
                "target": "r3",
            },
            {"name": "fallback", "default": True, "target": {"endpoints": ["r1", "r3"]}},
        ],
    }


BASE_TOML = """\
version = 1
[endpoints]
r1 = "http://r1:80"
r2 = "http://r2"
[[routes]]
name = "tenants"
priority = 10
match = { application = { regex = "big.*", case = "lower" } }
target = { endpoints = ["r1", "r2"], hash_on = ["execution_id"] }
[[routes]]
name = "fallback"
default = true
target = "r1"
"""

# -- the path rule -------------------------------------------------------------------

_SEGMENT = re.compile(r'\.?(?:([A-Za-z_][A-Za-z0-9_\-]*)|("(?:[^"\\]|\\.)*"))|\[(\d+)\]')


def _segments(path: str) -> list[str | int]:
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        assert m is not None, f"malformed path {path!r} at {pos}"
        assert m.end() > pos, f"malformed path {path!r} at {pos}"
        if pos == 0:
            assert not m.group(0).startswith("."), f"path {path!r} starts with a dot"
        name, quoted, index = m.groups()
        out.append(int(index) if index is not None else name or json.loads(quoted))
        pos = m.end()
    return out


def check_issue(issue: ConfigIssue, document: object) -> None:
    """Assert ``issue`` follows the path rule against the parsed ``document``."""
    assert isinstance(issue.message, str)
    assert issue.message
    if not issue.path:
        assert issue.message.startswith(WHOLE_DOCUMENT), issue
        return
    node = document
    parent = _segments(issue.path)[:-1]
    for pos, step in enumerate(parent):
        if isinstance(node, str) and parent[pos:] in (["endpoints"], ["endpoints", 0]):
            return  # a shorthand target "r1" is addressed in its long form
        if isinstance(step, int):
            assert isinstance(node, list | tuple), f"{issue}: {step} indexes a non-list"
            assert 0 <= step < len(node), f"{issue}: index {step} out of range"
            node = node[step]
        else:
            assert isinstance(node, Mapping), f"{issue}: {step!r} in a non-mapping"
            assert step in node, f"{issue}: no key {step!r}"
            node = node[step]


def assert_only_config_error(source: Any, document: object) -> None:
    """Load ``source``: success or a ConfigError whose issues follow the path rule."""
    try:
        config = load_config(source)
    except ConfigError as exc:
        error = exc
    else:
        for warning in config.warnings:
            check_issue(warning, document)
        return
    assert error.issues
    assert str(error)
    for issue in error.issues:
        check_issue(issue, document)


# -- strategies ------------------------------------------------------------------------

# Every code point, lone surrogates and control characters included.
ANY_CHAR = st.characters(exclude_categories=())
BAD_PATTERNS = (
    "[[a]",
    "[a--b]",
    "(",
    "[a-",
    "(?P<",
    "a{2,1}",
    "(?<=a+)b",
    "*",
    "\\",
    "(a)\\2",
    "(?i",
    "x{99999999999}",
)
# Looked up by name: hypothesis prints its strategies, and repr() of these is
# huge or (for the integer) raises.
SPECIAL = {
    "long_text": "x" * 5_000,
    "long_pattern": "(a+)+$" * 300,
    "long_accented": "é" * 3_000,
    "huge_int": 10**5000,
    "huge_negative": -(10**5000),
}


def _special(name: str) -> object:
    return SPECIAL[name]


huge = st.sampled_from(sorted(SPECIAL)).map(_special)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-(2**70), 2**31, -1, 0]),
    st.floats(),
    st.text(ANY_CHAR, max_size=20),
    st.sampled_from(KNOWN_KEYS),
    st.sampled_from(BAD_PATTERNS),
    huge,
    st.binary(max_size=8),
)
keys = st.one_of(
    st.sampled_from(KNOWN_KEYS), st.text(ANY_CHAR, max_size=8), st.integers(), st.none()
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys, children, max_size=4)
        | st.tuples(children, children)
    ),
    max_leaves=10,
)


def deep(depth: int, kind: str) -> object:
    """A structure nested ``depth`` deep, built without recursion."""
    node: object = "leaf"
    for _ in range(depth):
        node = [node] if kind == "list" else {"routes": node}
    return node


def mutate(data: st.DataObject, doc: dict[str, Any]) -> None:
    """Damage ``doc`` in place at a random place."""
    container: Any = doc
    while True:
        keys_ = list(range(len(container))) if isinstance(container, list) else list(container)
        if not keys_:
            break
        key = data.draw(st.sampled_from(keys_))
        child = container[key]
        if not isinstance(child, dict | list) or data.draw(st.booleans()):
            break
        container = child
    action = data.draw(
        st.sampled_from(["replace", "delete", "add", "duplicate", "deep", "bad_regex", "huge"])
    )
    if not keys_:
        action = "add"
    if action == "replace":
        container[key] = data.draw(junk)
    elif action == "delete":
        del container[key]
    elif action == "add":
        new = data.draw(junk)
        if isinstance(container, list):
            container.append(new)
        else:
            with contextlib.suppress(TypeError):  # an unhashable key drawn: skip
                container[data.draw(keys)] = new
    elif action == "duplicate":
        if isinstance(container, list):
            container.append(container[key])
        else:
            container[key] = [container[key], container[key]]
    elif action == "deep":
        depth = data.draw(st.sampled_from([50, 1_500, 20_000]))
        container[key] = deep(depth, data.draw(st.sampled_from(["list", "dict"])))
    elif action == "bad_regex":
        container[key] = {"regex": data.draw(st.sampled_from(BAD_PATTERNS))}
    else:
        container[key] = data.draw(huge)


FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.data())
def test_mutated_mappings_raise_only_config_error(data: st.DataObject) -> None:
    doc = base()
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(data, doc)
    assert_only_config_error(doc, doc)


@settings(FUZZ, max_examples=500)
@given(junk)
def test_arbitrary_documents_raise_only_config_error(document: Any) -> None:
    if isinstance(document, Mapping):
        assert_only_config_error(document, document)
    else:
        with pytest.raises(ConfigError) as info:
            load_config({"routes": document})  # mapping at top, junk inside
        for issue in info.value.issues:
            check_issue(issue, {"routes": document})


SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".txt", "")


def _texts() -> dict[str, str]:
    doc = base()
    return {
        ".yaml": yaml.safe_dump(doc),
        ".yml": yaml.safe_dump(doc, default_flow_style=True),
        ".json": json.dumps(doc),
        ".toml": BASE_TOML,
    }


SPECIAL_FILES = (
    "[" * 100_000,
    "{" * 100_000,
    "- " * 50_000 + "x",
    "a = " + "[" * 50_000,
    "version: !!python/object/apply:os.system ['true']\n",
    "routes: &a [*a]\n",
    "\ufeff{}",
    "",
    "null",
    "42",
    '{"routes": 1e999999}',
    '{"version": ' + "9" * 5000 + "}",
    "version: " + "9" * 5000 + "\n",
    "version = " + "9" * 5000 + "\n",
)


@st.composite
def files(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(SUFFIXES))
    kind = draw(st.sampled_from(["corrupt", "bytes", "special", "junk"]))
    if kind == "bytes":
        return suffix, draw(st.binary(max_size=300))
    if kind == "special":
        return suffix, draw(st.sampled_from(SPECIAL_FILES)).encode("utf-8")
    if kind == "junk":
        try:
            text = json.dumps(draw(junk), default=repr, ensure_ascii=False)
        except ValueError:  # an integer too long for str()
            text = "[]"
        return suffix, text.encode("utf-8", "surrogatepass")
    text = _texts().get(suffix, _texts()[".yaml"])
    at = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["truncate", "insert", "replace", "not_utf8"]))
    if how == "truncate":
        text = text[:at]
    elif how == "insert":
        text = text[:at] + draw(st.text(ANY_CHAR, max_size=5)) + text[at:]
    elif how == "replace":
        end = draw(st.integers(at, len(text)))
        text = (
            text[:at]
            + draw(st.sampled_from(['"', "'", ":", "[", "{", "]", "- ", "\t", "\x00", "=", "#"]))
            + text[end:]
        )
    raw = text.encode("utf-8", "surrogatepass")
    if how == "not_utf8":
        raw = raw[:at] + b"\xff\xfe" + raw[at:]
    return suffix, raw


@settings(FUZZ, max_examples=800)
@given(files())
def test_broken_files_raise_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[str, bytes]
) -> None:
    suffix, raw = file
    path = tmp_path_factory.mktemp("cfg") / f"routes{suffix}"
    path.write_bytes(raw)
    try:
        document = read_source(path)
    except ConfigError as exc:
        error = exc
    else:
        assert_only_config_error(path, document)
        return
    # The file itself is unusable: whole-document issues only, naming the file.
    assert error.source == str(path)
    for issue in error.issues:
        assert issue.path == ""
        assert issue.message.startswith(WHOLE_DOCUMENT), issue


# -- the rule, by example ------------------------------------------------------------------


def issues_of(source: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(source)
    return [(i.path, i.message) for i in info.value.issues]


def test_every_problem_is_reported_with_its_path() -> None:
    doc = base()
    doc["routes"][1]["name"] = "tenants"  # duplicate
    doc["routes"][0]["match"]["application"]["regex"][1] = "(unclosed"
    doc["routes"][0]["target"]["panic_threshold"] = "half"
    doc["settings"]["cache_size"] = 10**5000
    doc["endpoints"]["r2"] = "not a url"
    doc["routes"][2]["target"]["endpoints"].append({"url": "http://r1:80", "weight": 0})
    paths = [p for p, _ in issues_of(doc)]
    assert paths == [
        "settings.cache_size",
        "endpoints.r2",
        "routes[0].match.application.regex[1]",
        # not routes[0].target.endpoints[1] (r2): declared, its one error is at endpoints.r2
        "routes[0].target.panic_threshold",
        "routes[1].name",  # a duplicate even though routes[0] has errors of its own
        "routes[2].target.endpoints[2].weight",
    ]


def test_duplicate_names_point_at_the_second() -> None:
    doc = base()
    doc["routes"][1]["name"] = "tenants"
    doc["routes"].insert(2, dict(doc["routes"][1]))
    assert issues_of(doc) == [
        ("routes[1].name", "duplicate rule name 'tenants' (also routes[0])"),
        ("routes[2].name", "duplicate rule name 'tenants' (also routes[0])"),
    ]


def test_whole_document_problems_have_an_empty_path(tmp_path: Path) -> None:
    assert issues_of({1: "x", "routes": []})[0][0] == ""
    (tmp_path / "a.json").write_text("[" * 100_000)
    assert issues_of(tmp_path / "a.json") == [("", "nested too deeply")]
    (tmp_path / "b.yaml").write_bytes(b"version: 1\nroutes: \xff\n")
    assert issues_of(tmp_path / "b.yaml") == [("", "not UTF-8 text (byte 19)")]
    (tmp_path / "c.toml").write_text("version = = 1")
    ((path, message),) = issues_of(tmp_path / "c.toml")
    assert path == ""
    assert message.startswith("syntax error")


def test_yaml_alias_bomb_is_reported_quickly(tmp_path: Path) -> None:
    # 9**9 leaves if expanded; the loader must never walk or print it whole.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    lines.append("version: *l9")
    lines.append("settings: {regex_engine: *l9, cache_size: *l9}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    found = dict(issues_of(path))
    assert found["l9"].startswith("unknown key")
    assert found["version"].startswith("unsupported version [[[...]")
    assert found["settings.regex_engine"].startswith("expected one of re, re2, got [[[...]")
    assert found["settings.cache_size"] == "expected an integer, got a list"
    assert all(len(message) < 500 for message in found.values())


def test_huge_integers_are_reported_not_crashed() -> None:
    found = dict(
        issues_of(
            {
                "version": 10**5000,
                "routes": [
                    {"name": "d", "default": True, "target": "http://x", "priority": -(10**5000)}
                ],
            }
        )
    )
    assert "an integer of" in found["version"]


# -- the health section ----------------------------------------------------------------


def failed_load(doc: dict[str, Any]) -> tuple[ConfigError, int]:
    """Load ``doc``, expecting a ConfigError: the error and the peak memory traced."""
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            load_config(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return info.value, peak


def _alias_bomb() -> list[Any]:
    """What YAML anchors give: 9**6 leaves if walked, a few dozen objects in memory."""
    node: list[Any] = ["x"] * 9
    for _ in range(5):
        node = [node] * 9
    return node


def _health_shapes() -> list[tuple[str, str]]:
    keys = [f"{k}" for k in ("interval", "timeout", "eject_after", "readmit_after")]
    keys += [f"redis_lag.{k}" for k in ("type", "name", "master", "max_lag_bytes", "replicas[0]")]
    keys += [f"http.{k}" for k in ("type", "name", "path", "expect_status", "endpoints[0]")]
    return [(value, key) for value in ("huge_int", "alias_bomb") for key in keys]


@pytest.mark.parametrize(("value_name", "where"), _health_shapes())
def test_health_section_hostile_values(value_name: str, where: str) -> None:
    value: object = 10**5000 if value_name == "huge_int" else _alias_bomb()
    health: dict[str, Any] = {"probes": [{"type": "http", "name": "p", "endpoints": ["a"]}]}
    kind, _, key = where.rpartition(".")
    if not kind:
        health[key] = value
    else:
        probe: dict[str, Any] = (
            {"type": "redis_lag", "name": "p", "master": "m", "replicas": ["a"]}
            if kind == "redis_lag"
            else {"type": "http", "name": "p", "endpoints": ["a"]}
        )
        if key.endswith("[0]"):
            probe[key[:-3]] = [value]
        else:
            probe[key] = value
        health["probes"] = [probe]
    doc = {
        "endpoints": {"a": "http://a", "m": "redis://m:6379"},
        "routes": [{"name": "d", "default": True, "target": "a"}],
        "health": health,
    }
    # Warm up first: importing the health package on first use costs more than
    # the bound, and tests may run in any order.
    with pytest.raises(ConfigError):
        load_config({**doc, "health": {"interval": "x", "probes": []}})
    error, peak = failed_load(doc)
    for issue in error.issues:
        check_issue(issue, doc)
        assert len(issue.message) < 500
    # Reported where it is (an integer under expect_status is read as a list of one).
    expected = f"health.{key}" if not kind else f"health.probes[0].{key}"
    assert any(i.path.startswith(expected) for i in error.issues), error.issues
    # Reporting the value must not walk it: a bounded preview, not 9**6 leaves
    # (whose repr alone is 3.5 MB; one more level of anchors multiplies by 9).
    assert peak < 1_000_000


@pytest.mark.parametrize(
    "where",
    [
        "version",
        "settings.regex_engine",
        "settings.cache_size",
        "routes[0].name",
        "routes[0].priority",
        "routes[0].match.application.case",
        "routes[0].target.algorithm",
        "routes[0].target.missing_key",
        "routes[0].target.panic_threshold",
        "routes[0].target.endpoints[0].weight",
    ],
)
@pytest.mark.parametrize("value_name", ["huge_int", "alias_bomb"])
def test_core_sections_report_hostile_values_briefly(value_name: str, where: str) -> None:
    hostile: object = 10**5000 if value_name == "huge_int" else _alias_bomb()

    def load_with(value: object) -> tuple[set[str], int]:
        doc = base()
        doc["routes"][0]["target"]["endpoints"][0] = {"id": "r1"}  # long form, to hold a weight
        steps = _segments(where)
        node: Any = doc
        for step in steps[:-1]:
            node = node[step]
        node[steps[-1]] = value
        error, peak = failed_load(doc)
        return {issue.path for issue in error.issues}, peak

    paths, peak = load_with(hostile)
    assert where in paths
    # Compared with a small wrong value in the same place (building the ring
    # table alone takes megabytes): reporting the hostile one costs no more.
    _, baseline = load_with([["x"]])
    assert peak < baseline + 500_000
