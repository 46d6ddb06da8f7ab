"""The Java dialect against the JDK itself (``java.util.regex``, ``java.lang.String``).

One JVM (tests/spinnaker/java/Oracle.java, compiled at test time) answers every
question; the generated inputs are the same on every run. Without a JDK these
tests skip locally and fail under ``CI``.
"""

from __future__ import annotations

import random
import re

import pytest
from java_oracle import Oracle
from java_patterns import pairs

from selectors_lib._javaregex import (
    JavaPatternError,
    compile_java,
    equals_ignore_case,
    to_lower_root,
)

#: The issue's target: at least 100,000 (pattern, value) pairs, 0 disagreements.
PAIRS = 100_000


def _ours(cache: dict[str, re.Pattern[str] | JavaPatternError], pattern: str, value: str) -> str:
    if pattern not in cache:
        try:
            cache[pattern] = compile_java(pattern)
        except JavaPatternError as exc:
            cache[pattern] = exc
    compiled = cache[pattern]
    if isinstance(compiled, JavaPatternError):
        return "E"
    return "1" if compiled.fullmatch(value) else "0"


def test_dialect_agrees_with_java_util_regex(jdk: Oracle) -> None:
    generated = pairs(2026, PAIRS)
    assert len(generated) >= PAIRS
    answers = jdk.matches(generated)
    cache: dict[str, re.Pattern[str] | JavaPatternError] = {}
    disagreements = [
        (pattern, value, java, ours)
        for (pattern, value), java in zip(generated, answers, strict=True)
        if (ours := _ours(cache, pattern, value)) != java
    ]
    # Both sides must actually exercise matches, misses and refusals.
    assert {"0", "1", "E"} <= set(answers)
    assert answers.count("1") > PAIRS // 10
    assert not disagreements, "\n".join(
        f"{p!r} on {v!r}: java {j}, ours {o}" for p, v, j, o in disagreements[:20]
    )


def test_refusals_name_the_java_rule(jdk: Oracle) -> None:
    refused = ["a{", "a{,3}", "(?P<n>a)", "\\0", "(?a)x", "(?#c)", "\\U00000061", "x{1,2"]
    assert jdk.matches([(p, "a") for p in refused]) == ["E"] * len(refused)
    messages = []
    for pattern in refused:
        with pytest.raises(JavaPatternError) as info:
            compile_java(pattern)
        messages.append(str(info.value).split(" near index")[0])
    assert messages == [
        "Illegal repetition",
        "Illegal repetition",
        "Unknown inline modifier",
        "Illegal octal escape sequence",
        "Unknown inline modifier",
        "Unknown inline modifier",
        "Illegal/unsupported escape sequence",
        "Unclosed counted closure",
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?<=a+)b", "obvious maximum length"),
        ("\\X", "grapheme clusters"),
        ("a\\b{g}", "grapheme cluster boundaries"),
        ("(?c)a", "CANON_EQ"),
        ("\\N{LATIN SMALL LETTER A}", "\\N{name}"),
        ("(?<=(a|bc))x", "capturing group"),
        ("(a\\1)", "inside its own group"),
        ("\\2(a)(b)", "later group"),
    ],
)
def test_what_python_cannot_express_is_refused_clearly(
    jdk: Oracle, pattern: str, reason: str
) -> None:
    # Java accepts these; the port says exactly what it cannot do (docs/spinnaker.md).
    assert jdk.matches([(pattern, "ab")]) != ["E"]
    with pytest.raises(JavaPatternError, match=re.escape(reason)):
        compile_java(pattern)


#: Characters around which Java's and Python's lowercasing differ.
_CASE_ALPHABET = [
    *"ΣΣΣΑaA :'.-_1Iİıß\u1e9eǅK\u212aςσΩé\u00b7\u2019\u05d0\ufb00x\t\n",
    "\u0301",
    "\u0345",
    "\u00ad",
    "\u200d",
    "\u0130",
]


def test_to_lower_root_agrees_with_java(jdk: Oracle) -> None:
    rng = random.Random(13)
    values = ["Α:Σ", "ΑΣ", "ΑΣ.", "Α.Σ", "Α'Σ", "Α1Σ", "Α_Σ", "İ", "\U00010400", "ǅ"]
    values += [
        "".join(rng.choice(_CASE_ALPHABET) for _ in range(rng.randint(1, 7))) for _ in range(4000)
    ]
    # Every code point once (surrogates alone are not text).
    values += [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c % 3 == 0]
    java = jdk.lower(values)
    wrong = [(v, j) for v, j in zip(values, java, strict=True) if to_lower_root(v) != j]
    assert not wrong, wrong[:10]
    assert to_lower_root("Α:Σ") == "α:σ"
    assert to_lower_root("ΑΣ") == "ας"


def test_equals_ignore_case_agrees_with_java(jdk: Oracle) -> None:
    rng = random.Random(14)
    chars = [chr(c) for c in range(0x2200) if not 0xD800 <= c <= 0xDFFF]
    chars += ["\U00010400", "\U00010428", "\u212a", "\u212b", "\u0130", "\u0131", "\u017f"]
    pairs_ = [(a, a.upper()) for a in chars] + [(a, a.lower()) for a in chars]
    pairs_ += [(rng.choice(chars) + "k", rng.choice(chars) + "K") for _ in range(5000)]
    java = jdk.equals_ignore_case(pairs_)
    wrong = [p for p, j in zip(pairs_, java, strict=True) if equals_ignore_case(*p) != j]
    assert not wrong, wrong[:10]


@pytest.mark.parametrize(
    "pattern",
    [
        "(" * 5000 + "a" + ")" * 5000,
        "[" * 5000 + "a" + "]" * 5000,
        "(?<=a{0,1000000})b",
    ],
)
def test_pathological_patterns_are_refused_not_crashed_on(pattern: str) -> None:
    with pytest.raises(JavaPatternError):
        compile_java(pattern)


def test_big_but_reasonable_patterns_compile() -> None:
    assert compile_java("x" * 20_000).fullmatch("x" * 20_000)
    assert compile_java("a{2147483647}").fullmatch("a") is None


def _property_patterns() -> list[str]:
    from selectors_lib._javaregex import _tables

    patterns = []
    for name in _tables.PROP:
        patterns += [f"\\p{{{name}}}", f"(?i)\\p{{{name}}}"]
    for name in _tables.UPROP:
        patterns += [f"\\p{{Is{name.lower()}}}", f"(?i)\\P{{Is{name}}}"]
    for name in _tables.POSIX:
        patterns += [f"(?U)\\p{{{name.capitalize()}}}", f"(?iU)\\p{{{name}}}"]
    patterns += [f"\\p{{Is{name}}}" for name in _tables.SCRIPT]
    patterns += [f"\\p{{sc={alias.lower()}}}" for alias in _tables.SCRIPTALIAS]
    patterns += [f"\\p{{In{alias}}}" for alias in _tables.BLOCKALIAS]
    return patterns


def test_unicode_tables_agree_with_the_jdk(jdk: Oracle) -> None:
    # Every property, script and block name the tables know, on code points at
    # the edges of its ranges and a few others: the generated tables and the
    # name lookups are Java's.
    rng = random.Random(15)
    requests: list[tuple[str, str]] = []
    for pattern in _property_patterns():
        compiled = compile_java(pattern)
        points = {rng.randrange(0x110000) for _ in range(4)}
        # The edges of a few ranges of the set, both sides.
        text = compiled.pattern
        for char in text[1:40]:
            points.update((ord(char) - 1, ord(char), ord(char) + 1))
        requests += [(pattern, chr(p)) for p in sorted(points) if 0 <= p < 0x110000]
    answers = jdk.matches(requests)
    wrong = [
        (p, hex(ord(v)), a)
        for (p, v), a in zip(requests, answers, strict=True)
        if a != ("1" if compile_java(p).fullmatch(v) else "0")
    ]
    assert len(requests) > 20_000
    assert not wrong, wrong[:20]
