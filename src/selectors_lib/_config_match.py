"""The ``match`` section of a rule: field matchers, attributes, and pattern compilation.

Part of the loader (:mod:`selectors_lib._config`): every problem is reported at
its path and nothing is built from an invalid section. Patterns compile with the
configured engine (``re`` or ``re2``), or as ``java.util.regex`` with
``syntax: java``; risky patterns are reported as warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from ._criteria import FIELDS
from ._javaregex import compile_java, translate
from ._match import CASE_MODES, SYNTAXES, FieldMatch, Match
from ._regex import Pattern, backtracking_risk, compile_pattern
from ._router import Settings
from ._validate import Checker, join, kind, show

__all__ = ["parse_match"]

_MATCH_KEYS = (*FIELDS, "attributes")
_FIELD_KEYS = ("equals", "regex", "present", "case", "syntax")


def parse_match(check: Checker, raw: object, path: str, settings: Settings) -> Match | None:
    if raw is None:
        return Match()
    data = check.mapping(raw, path, _MATCH_KEYS)
    if data is None:
        return None
    fields: list[tuple[str, FieldMatch]] = []
    good = True
    for key, spec in data.items():
        if key == "attributes":
            if not isinstance(spec, Mapping):
                check.error(f"{path}.attributes", f"expected a mapping, got {kind(spec)}")
                good = False
                continue
            attributes: Mapping[object, object] = spec
            # Requests' attribute names are lowercased: two spellings of one
            # name would be one value tested twice (AND), not two attributes.
            spelled: dict[str, str] = {}
            for name, attr_spec in attributes.items():
                if not isinstance(name, str) or not name:
                    check.error(
                        f"{path}.attributes",
                        f"attribute names must be non-empty strings, got {show(name)}",
                    )
                    good = False
                    continue
                first = spelled.setdefault(name.lower(), name)
                if first != name:
                    check.error(
                        join(f"{path}.attributes", name),
                        f"the same attribute as {show(first)}: names ignore case",
                    )
                    good = False
                    continue
                matcher = _field(check, attr_spec, join(f"{path}.attributes", name), settings)
                if matcher is None:
                    good = False
                else:
                    fields.append((f"attributes.{name.lower()}", matcher))
        else:
            matcher = _field(check, spec, f"{path}.{key}", settings)
            if matcher is None:
                good = False
            else:
                fields.append((key, matcher))
    return Match(tuple(fields)) if good else None


def _field(check: Checker, spec: object, path: str, settings: Settings) -> FieldMatch | None:
    if isinstance(spec, str | list | tuple):
        values = check.strings(spec, path)
        return None if values is None else FieldMatch(equals=values)
    data = check.mapping(spec, path, _FIELD_KEYS)
    if data is None:
        return None
    kinds = [k for k in ("equals", "regex", "present") if k in data]
    if len(kinds) != 1:
        which = " and ".join(kinds) if kinds else "none"
        check.error(path, f"give exactly one of equals, regex or present (got {which})")
        return None
    case = check.one_of(data.get("case", "sensitive"), f"{path}.case", CASE_MODES)
    syntax = check.one_of(data.get("syntax", "re"), f"{path}.syntax", SYNTAXES)
    if case is None or syntax is None:
        return None
    kind = kinds[0]
    if "syntax" in data and kind != "regex":
        check.error(f"{path}.syntax", f"syntax applies to regex only, not {kind}")
        return None
    if kind == "present":
        present = check.boolean(data["present"], f"{path}.present")
        return None if present is None else FieldMatch(present=present, case=case)
    values = check.strings(data[kind], f"{path}.{kind}")
    if values is None:
        return None
    if kind == "equals":
        if case == "lower":
            for i, value in enumerate(values):
                if value != value.lower():
                    check.warn(
                        f"{path}.equals[{i}]",
                        f"{value!r} has capitals but the request value is lowercased: "
                        "it never matches",
                    )
        return FieldMatch(equals=values, case=case)
    compiled = []
    good = True
    for i, pattern in enumerate(values):
        where = (
            f"{path}.regex"
            if len(values) == 1 and isinstance(data[kind], str)
            else f"{path}.regex[{i}]"
        )
        try:
            if syntax == "java":
                compiled.append(_compile_java(check, where, pattern, case == "ignore"))
            else:
                compiled.append(
                    _compile(check, where, pattern, settings.regex_engine, case == "ignore")
                )
        except ValueError as exc:
            check.error(where, f"invalid regular expression: {exc}")
            good = False
            continue
        except ImportError:
            good = False  # reported once, under settings.regex_engine
            continue
    if not good:
        return None
    return FieldMatch(
        regex=values,
        case=case,
        compiled=tuple(compiled),
        max_length=settings.max_value_length,
        syntax=syntax,
    )


def _compile_java(check: Checker, where: str, pattern: str, ignore_case: bool) -> Pattern:
    """Compile a ``java.util.regex`` pattern (always to Python ``re``, whatever the engine).

    Raises:
        ValueError: Java would refuse the pattern, or Python cannot express it.
    """
    # CASE_INSENSITIVE | UNICODE_CASE for the whole pattern, as Java's flags
    # argument would set them: the pattern's own (?-i) still turns them off.
    source = "(?iu)" + pattern if ignore_case else pattern
    compiled = compile_java(source)
    risk = backtracking_risk(translate(source))
    if risk is not None:
        check.warn(
            where,
            f"pattern {pattern!r:.80} {risk} and may backtrack catastrophically; simplify it",
        )
    return compiled


def _compile(check: Checker, where: str, pattern: str, engine: str, ignore_case: bool) -> Pattern:
    """:func:`compile_pattern`, with warnings about the pattern reported at ``where``.

    ``re`` warns (FutureWarning) about syntax whose meaning will change, such as
    ``[[``; as a config warning it carries its path, and under ``-W error`` it
    cannot escape the loader. ``re.compile`` caches and warns once per process,
    so the warnings are taken from :func:`nested_quantifier`'s fresh parse.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = compile_pattern(pattern, engine=engine, ignore_case=ignore_case)
        risk = backtracking_risk(pattern) if engine == "re" else None
    for message in dict.fromkeys(str(w.message) for w in caught):
        check.warn(where, message)
    if risk is not None:
        check.warn(
            where,
            f"pattern {pattern!r:.80} {risk} and may backtrack catastrophically; "
            "simplify it or use regex_engine: re2 (only RE2 bounds every pattern's time)",
        )
    return compiled
