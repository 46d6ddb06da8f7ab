"""Regular-expression safety: load-time warnings, the length cap, and RE2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from selectors_lib import ConfigError, Criteria, load_config, load_router

ROOT = Path(__file__).resolve().parents[2]
ADVERSARIAL = "a" * 100_000 + "!"


def config(pattern: str, **settings: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "settings": settings,
        "endpoints": {"a": "http://a", "b": "http://b"},
        "routes": [
            {"name": "risky", "match": {"application": {"regex": pattern}}, "target": "a"},
            {"name": "fallback", "default": True, "target": "b"},
        ],
    }


def test_nested_quantifier_warns_at_load() -> None:
    loaded = load_config(config("(a+)+$"))
    ((path, message),) = [(w.path, w.message) for w in loaded.warnings]
    assert path == "routes[0].match.application.regex"
    assert "nests quantifiers" in message
    assert "re2" in message
    # Simple patterns load quietly.
    assert load_config(config("app-[a-z]+")).warnings == ()


def test_adversarial_value_is_rejected_by_the_cap() -> None:
    router = load_router(config("(a+)+$"))
    decision = router.explain(Criteria(application=ADVERSARIAL))
    assert decision.rule == "fallback"
    risky = decision.considered[0]
    assert (risky.name, risky.matched) == ("risky", False)
    assert risky.reason == "application is longer than 4096 characters, never matched"
    assert router.select(Criteria(application=ADVERSARIAL)).id == "b"
    # Under the cap the pattern still applies as written.
    assert router.select(Criteria(application="aaaa")).id == "a"


def test_cap_is_configurable() -> None:
    router = load_router(config("a+", max_value_length=8))
    assert router.select(Criteria(application="a" * 8)).id == "a"
    assert router.select(Criteria(application="a" * 9)).id == "b"


def test_re2_engine_matches_in_linear_time_and_does_not_warn() -> None:
    loaded = load_config(config("(a+)+$", regex_engine="re2", max_value_length=1 << 20))
    assert loaded.warnings == ()
    router = load_router(config("(a+)+$", regex_engine="re2", max_value_length=1 << 20))
    decision = router.explain(Criteria(application=ADVERSARIAL))
    # The value reached the pattern (no cap message) and simply did not match.
    assert decision.considered[0].reason.startswith("application 'aaaa")
    assert decision.rule == "fallback"
    assert router.select(Criteria(application="a" * 100_000)).id == "a"


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",  # backreference
        r"(?=app)app-.*",  # lookahead
        r"(?<!x)app",  # lookbehind
        r"(?>a+)b",  # atomic group
    ],
)
def test_re2_rejects_what_it_cannot_run_in_linear_time(pattern: str) -> None:
    load_config(config(pattern))  # fine for re
    with pytest.raises(ConfigError) as info:
        load_config(config(pattern, regex_engine="re2"))
    (issue,) = info.value.issues
    assert issue.path == "routes[0].match.application.regex"
    assert issue.message.startswith("invalid regular expression: ")
    assert "b'" not in issue.message  # RE2's bytes message is decoded


def test_patterns_re_warns_about_become_config_warnings() -> None:
    # re emits FutureWarning for "[[" (a set inside a set, meaning to change);
    # pytest runs with warnings as errors, so escaping here would be an exception.
    for _ in range(2):  # re caches compiled patterns; the warning must not vanish
        loaded = load_config(config("[[:alpha:]]+"))
        assert [(w.path, w.message) for w in loaded.warnings] == [
            ("routes[0].match.application.regex", "Possible nested set at position 1")
        ]


def test_re2_ignore_case_and_full_match() -> None:
    router = load_router(
        {
            "version": 1,
            "settings": {"regex_engine": "re2"},
            "endpoints": {"a": "http://a", "b": "http://b"},
            "routes": [
                {
                    "name": "r",
                    "match": {"account": {"regex": "prod-[0-9]+", "case": "ignore"}},
                    "target": "a",
                },
                {"name": "d", "default": True, "target": "b"},
            ],
        }
    )
    assert router.select(Criteria(account="PROD-42")).id == "a"
    assert router.select(Criteria(account="prod-42x")).id == "b"  # whole value must match
    assert router.select(Criteria(account="xprod-42")).id == "b"


def test_benchmark_runs_and_shows_the_cap() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_regex.py"), "--budget", "0.005"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "nests quantifiers" in out
    rows = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    assert "stopped" in rows["100000"]
    assert "*" in rows["100000"]  # rejected by the cap
    assert rows["100000"].split("|")[3].strip().endswith(("us", "ms"))  # re2 ran it
