"""Field matchers: how one criteria value is tested, and a rule's whole match.

A :class:`FieldMatch` tests one value in one of three ways (``equals`` any of
some values, ``regex``: any of some patterns matches the *whole* value, or
``present``), after an explicit case rule:

- ``sensitive``: compare as given.
- ``lower``: lowercase the request value first, leave the configured values and
  patterns alone (Spinnaker's application and account selectors: a pattern with
  capitals then never matches unless it carries ``(?i)``).
- ``ignore``: compare without regard to case on both sides (Spinnaker's
  ``equalsIgnoreCase`` for origins, with the JDK's simple case mappings, see
  :func:`equals_ignore_case`; patterns compile case-insensitively).

A ``regex`` matcher reads its patterns in one of two dialects (``syntax``):
``re`` (Python's, the default) or ``java`` (``java.util.regex``, as Spinnaker
reads them; compiled by ``_javaregex``). With ``java``, ``lower`` is Java's
``String.toLowerCase(Locale.ROOT)`` (its own final-sigma rule and Unicode data).

An absent value (``None``) never matches ``equals`` or ``regex``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from ._criteria import FIELDS, Criteria

if TYPE_CHECKING:
    from ._regex import Pattern

__all__ = [
    "CASE_MODES",
    "SYNTAXES",
    "FieldMatch",
    "Match",
    "equals_ignore_case",
    "equals_key",
    "fold_case",
    "getter",
    "lowering",
]

CASE_MODES: tuple[str, ...] = ("sensitive", "lower", "ignore")
#: Pattern dialects of a ``regex`` matcher: Python's ``re`` or ``java.util.regex``.
SYNTAXES: tuple[str, ...] = ("re", "java")


# The Java dialect's case tables are a quarter of the package's import time
# and most configurations never use them: they are imported on first use.


def equals_ignore_case(a: str, b: str) -> bool:
    """Java's ``String.equalsIgnoreCase``: same length, each char equal under simple case maps."""
    from ._javaregex import equals_ignore_case as java_equals_ignore_case

    return java_equals_ignore_case(a, b)


def lowering(syntax: str) -> Callable[[str], str]:
    """The ``lower`` rule of a dialect: ``str.lower``, or Java's ``toLowerCase(Locale.ROOT)``."""
    if syntax == "java":
        from ._javaregex import to_lower_root

        return to_lower_root
    return str.lower


def _fold_char(c: str) -> str:
    from ._javaregex._charset import java_lower, java_upper

    # The JDK's simple mappings, as equals_ignore_case compares with.
    return chr(java_lower(java_upper(ord(c))))


class _FoldTable(dict[int, str]):
    """``str.translate`` table for :func:`fold_case`, filled on first use of a char.

    Only the Basic Multilingual Plane is kept (at most 65,536 entries), so
    clients sending every code point cannot grow it without bound.
    """

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        if code < 0x10000:
            self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()
# For ASCII the fold is plain lower(), which is far faster than translate();
# checked on first use rather than assumed, should the case mappings ever change.
_ASCII_FOLD_IS_LOWER: list[bool] = []  # empty until checked


def _check_ascii_fold() -> list[bool]:
    _ASCII_FOLD_IS_LOWER[:] = [all(_fold_char(chr(i)) == chr(i).lower() for i in range(128))]
    return _ASCII_FOLD_IS_LOWER


def fold_case(value: str) -> str:
    """Map ``value`` to a key equal for exactly the strings :func:`equals_ignore_case` accepts.

    ``equals_ignore_case(a, b)`` holds when the strings have the same length and,
    char by char, ``x == y`` or ``upper(x) == upper(y)`` or
    ``lower(upper(x)) == lower(upper(y))`` (simple mappings). The first two
    imply the third, so it is ``lower(upper(x)) == lower(upper(y))`` for every
    position: mapping each char to ``lower(upper(c))`` keeps the length and
    makes the comparison a plain equality, which a hash index can look up.

    Args:
        value: Any string.

    Returns:
        The folded string, as long as ``value``.
    """
    if value.isascii() and (_ASCII_FOLD_IS_LOWER or _check_ascii_fold())[0]:
        return value.lower()
    return value.translate(_FOLD_TABLE)


def _same(value: str) -> str:
    return value


_lower: Callable[[str], str] = str.lower


def equals_key(case: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """How an ``equals`` matcher in ``case`` mode compares, as two key functions.

    A request value ``v`` satisfies ``equals`` value ``x`` exactly when
    ``request_key(v) == config_key(x)``; the rule index looks requests up by it.

    Args:
        case: The matcher's case mode (anything but ``lower``/``ignore`` is
            ``sensitive``, as in :class:`FieldMatch`).

    Returns:
        ``(request_key, config_key)``.
    """
    if case == "ignore":
        return fold_case, fold_case
    if case == "lower":
        # Only the request value is lowercased (see the module docs).
        return _lower, _same
    return _same, _same


# Cached: a large configuration names the same few sources thousands of times.
@functools.lru_cache(maxsize=1024)
def getter(source: str) -> Callable[[Criteria], str | None]:
    """Return a fast function reading ``source`` (a field or ``attributes.<name>``).

    Raises:
        ValueError: ``source`` names no field and is not ``attributes.<name>``.
    """
    if source in FIELDS:
        return operator.attrgetter(source)
    if source.startswith("attributes.") and len(source) > len("attributes."):
        name = source[len("attributes.") :].lower()
        return lambda criteria: criteria.attributes.get(name)
    raise ValueError(
        f"unknown source {source!r}; expected one of {', '.join(FIELDS)} or attributes.<name>"
    )


#: Up to this many ``equals`` values are tested by scanning their tuple; more
#: by a set.
_SCAN_MAX = 4


def _always(criteria: Criteria) -> bool:
    return True


def _preview(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


@attrs.frozen
class FieldMatch:
    """How one criteria value must look for a rule to match.

    Exactly one of ``equals``, ``regex`` (non-empty) or ``present`` (not None) is set.

    Args:
        equals: Accepted values (any of them).
        regex: Source text of accepted patterns (any of them, full match).
        present: ``True``: the value must be present; ``False``: absent.
        case: ``sensitive``, ``lower`` or ``ignore`` (see module docs).
        compiled: The compiled ``regex`` patterns, same order.
        max_length: Values longer than this never reach a pattern.
        syntax: The dialect of ``regex`` (``re`` or ``java``).
    """

    equals: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    present: bool | None = None
    case: str = "sensitive"
    compiled: tuple[Pattern, ...] = attrs.field(default=(), eq=False, repr=False)
    max_length: int = attrs.field(default=4096, eq=False, repr=False)
    syntax: str = "re"
    test: Callable[[str | None], bool] = attrs.field(init=False, eq=False, repr=False)
    """Return whether a value satisfies this matcher (a function specialised at build)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "test", self._specialise())

    def _specialise(self) -> Callable[[str | None], bool]:
        # One small closure per matcher: the hot path pays for no branch it
        # does not need. Every closure treats None as absent.
        if self.present is not None:
            want = self.present
            return lambda value: (value is not None) is want
        lower = self.case == "lower"
        if self.compiled:
            cap = self.max_length
            to_lower = lowering(self.syntax)
            if len(self.compiled) == 1:
                full = self.compiled[0].fullmatch
                if lower:
                    return lambda v: (
                        v is not None and len(v) <= cap and full(to_lower(v)) is not None
                    )
                return lambda v: v is not None and len(v) <= cap and full(v) is not None
            patterns = tuple(p.fullmatch for p in self.compiled)

            def any_pattern(v: str | None) -> bool:
                if v is None or len(v) > cap:  # checked before lower() copies it
                    return False
                text = to_lower(v) if lower else v
                return any(f(text) is not None for f in patterns)

            return any_pattern
        if self.case == "ignore":
            from ._javaregex import equals_ignore_case as java_equals_ignore_case

            values = self.equals
            return lambda v: v is not None and any(java_equals_ignore_case(v, x) for x in values)
        # Membership only: a set never decides an order here. With case "lower"
        # only the request value is lowercased: a configured value with capitals
        # never matches, exactly as such a Spinnaker pattern.
        if lower:
            accepted = frozenset(self.equals)
            return lambda v: v is not None and v.lower() in accepted
        if len(self.equals) <= _SCAN_MAX:
            # The values' own tuple: ``None in values`` is False (they are
            # strings), so no closure and no set per matcher (at 100k rules
            # those were a tenth of the heap).
            return self.equals.__contains__
        return frozenset(self.equals).__contains__

    def describe(self) -> str:
        """A short human description, e.g. ``regex 'big.*' (lowercased)``."""
        if self.present is not None:
            return "present" if self.present else "absent"
        if self.regex:
            body = "regex " + " | ".join(repr(p) for p in self.regex)
        elif len(self.equals) == 1:
            body = f"= {self.equals[0]!r}"
        else:
            body = "in [" + ", ".join(repr(v) for v in self.equals) + "]"
        suffix = {"sensitive": "", "lower": " (value lowercased)", "ignore": " (ignoring case)"}
        return body + suffix[self.case]

    def explain(self, name: str, value: str | None) -> tuple[bool, str]:
        """Test ``value`` and say why it passed or failed."""
        ok = self.test(value)
        if value is None:
            shown = "absent"
        else:
            shown = _preview(value)
            if self.compiled and len(value) > self.max_length:
                return ok, f"{name} is longer than {self.max_length} characters, never matched"
        verb = "matches" if ok else "does not match"
        return ok, f"{name} {shown} {verb} {self.describe()}"


@attrs.frozen
class Match:
    """A rule's whole match: every listed field must match (AND).

    An empty match accepts every request.

    Args:
        fields: ``(source, matcher)`` pairs in config order; a source is a
            criteria field name or ``attributes.<name>``.
    """

    fields: tuple[tuple[str, FieldMatch], ...] = ()
    test: Callable[[Criteria], bool] = attrs.field(init=False, eq=False, repr=False)
    """Return whether every field matches (a function specialised at build)."""

    def __attrs_post_init__(self) -> None:
        tests = tuple((getter(source), matcher.test) for source, matcher in self.fields)
        predicate: Callable[[Criteria], bool]
        if not tests:
            predicate = _always
        elif len(tests) == 1:
            ((get, test),) = tests
            predicate = lambda criteria: test(get(criteria))  # noqa: E731
        elif len(tests) == 2:
            (get1, test1), (get2, test2) = tests
            predicate = lambda criteria: test1(get1(criteria)) and test2(get2(criteria))  # noqa: E731
        else:
            predicate = lambda criteria: all(test(get(criteria)) for get, test in tests)  # noqa: E731
        object.__setattr__(self, "test", predicate)

    def explain(self, criteria: Criteria) -> tuple[bool, str]:
        """Test every field, and give the reason (the first failing field, or all that passed)."""
        if not self.fields:
            return True, "matches every request"
        passed: list[str] = []
        for source, matcher in self.fields:
            ok, why = matcher.explain(source, criteria.get(source))
            if not ok:
                return False, why
            passed.append(why)
        return True, "; ".join(passed)

    def as_mapping(self) -> Mapping[str, FieldMatch]:
        """The matchers by source."""
        return dict(self.fields)
