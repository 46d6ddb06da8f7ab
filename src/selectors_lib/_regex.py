"""Compiling operator patterns, and spotting the ones that can backtrack badly.

Patterns come from the operator; the values they run against come from clients.
Python's ``re`` backtracks, so a pattern such as ``(a+)+$`` takes exponential time
on a crafted value. Three defences, in order of strength: values longer than
``settings.max_value_length`` never reach a pattern; patterns of the known
catastrophic families (nested unbounded quantifiers ``(a+)+``, repeated
alternations whose branches overlap ``(a|a)*``, wildcards repeated many times
``(.*a){12}``) are reported at load; and ``regex_engine: re2`` swaps in RE2,
which runs in linear time by construction. The load-time check is a heuristic:
only RE2 bounds the time of *every* pattern.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Protocol

__all__ = [
    "ENGINES",
    "Pattern",
    "backtracking_risk",
    "cheap_to_run",
    "compile_pattern",
    "literal_prefix",
    "nested_quantifier",
]

ENGINES: tuple[str, ...] = ("re", "re2")

# The standard library's own parser: private, but stable since 3.11 and the only
# faithful view of how ``re`` reads a pattern.
_sre_parse: Any = importlib.import_module("re._parser")
_sre_constants: Any = importlib.import_module("re._constants")


class Pattern(Protocol):
    """What a compiled pattern must offer: a full match."""

    def fullmatch(self, string: str) -> object | None: ...


def compile_pattern(pattern: str, *, engine: str = "re", ignore_case: bool = False) -> Pattern:
    """Compile ``pattern`` with the chosen engine.

    Args:
        pattern: The regular expression, in the engine's syntax.
        engine: ``re`` (the standard library) or ``re2`` (``google-re2``).
        ignore_case: Match without regard to case.

    Returns:
        An object with ``fullmatch(str)``.

    Raises:
        ValueError: The pattern is invalid for the engine (message says why).
        ImportError: ``re2`` was chosen but ``google-re2`` is not installed.
    """
    if engine == "re":
        try:
            return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ValueError(str(exc)) from None
    if engine == "re2":
        re2 = _import_re2()
        try:
            options = re2.Options()
            options.case_sensitive = not ignore_case
            # The error comes back as a ConfigError with its path; RE2 would
            # also print it to stderr through absl logging.
            options.log_errors = False
            compiled: Pattern = re2.compile(pattern, options)
        except Exception as exc:  # re2 raises its own error type
            # ...whose message is bytes: show "invalid escape", not "b'invalid escape'".
            detail = exc.args[0] if len(exc.args) == 1 else exc
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise ValueError(str(detail)) from None
        return _RE2Pattern(compiled)
    raise ValueError(f"unknown regex engine {engine!r}; expected one of {', '.join(ENGINES)}")


class _RE2Pattern:
    """An RE2 pattern that, like ``re``, accepts any str.

    RE2 matches UTF-8 bytes, and a lone surrogate (``json.loads('"\\ud800"')``
    makes one) has no UTF-8 form: such a value cannot match, and must not raise.
    """

    __slots__ = ("_fullmatch",)

    def __init__(self, compiled: Pattern) -> None:
        self._fullmatch = compiled.fullmatch

    def fullmatch(self, string: str) -> object | None:
        try:
            return self._fullmatch(string)
        except UnicodeEncodeError:
            return None


def _import_re2() -> Any:
    try:
        import re2
    except ImportError:
        raise ImportError(
            "regex_engine 're2' needs google-re2: pip install 'selectors-lib[re2]'"
        ) from None
    return re2


_UNBOUNDED = _sre_constants.MAXREPEAT
_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT}
_POSSESSIVE = getattr(_sre_constants, "POSSESSIVE_REPEAT", None)


def nested_quantifier(pattern: str) -> bool:
    """Tell whether a pattern belongs to a known catastrophic-backtracking family.

    Kept under its first name for its callers; see :func:`backtracking_risk`.

    Args:
        pattern: A ``re`` pattern (invalid patterns are reported elsewhere).

    Returns:
        True when :func:`backtracking_risk` names a risk.
    """
    return backtracking_risk(pattern) is not None


#: Unbounded wildcard repeats in a row (counting a bounded repeat's copies) from
#: which a pattern is flagged: ``.*a.*b`` is fine, ``(.*a){12}b`` is n**12.
_WILDCARD_DEGREE = 5


def backtracking_risk(pattern: str) -> str | None:
    """Name the catastrophic-backtracking family a pattern belongs to, if any.

    Three syntactic families, each a heuristic (RE2 is the real defence):

    - nested unbounded quantifiers, ``(a+)+``, ``(\\w*)*x`` (a repeated group that
      contains a literal of its own, ``(-[a-z]+)*``, splits unambiguously and is
      not flagged);
    - an unbounded repeat of an alternation whose branches can start alike,
      ``(a|a)*b``, ``(.|x)+y`` (exponential);
    - many unbounded wildcard repeats in one match, ``(.*a){12}b``,
      ``.*a.*a.*a.*a.*a`` (polynomial of that degree).

    Args:
        pattern: A ``re`` pattern (invalid patterns are reported elsewhere).

    Returns:
        A short description for the warning (``nests quantifiers``...), or None.
    """
    try:
        parsed = list(_sre_parse.parse(pattern))
    except Exception:
        return None
    if _walk(parsed, inside_unbounded=False):
        return "nests quantifiers"
    if _overlapping_alternation(parsed, inside_unbounded=False):
        return "repeats an alternation whose branches overlap"
    degree = _degree(parsed, 1)
    if degree >= _WILDCARD_DEGREE:
        return f"repeats a wildcard {degree if degree < 1000 else 'many'} times"
    return None


def _flat(items: Any) -> list[Any]:
    out: list[Any] = []
    for op, av in items:
        if op is _sre_constants.SUBPATTERN:
            out.extend(_flat(av[-1]))
        else:
            out.append((op, av))
    return out


def _walk(items: Any, *, inside_unbounded: bool) -> bool:
    for op, av in items:
        if op in _REPEATS:
            _low, high, sub = av
            unbounded = high == _UNBOUNDED or high > 100
            if unbounded and inside_unbounded:
                return True
            anchored = any(o is _sre_constants.LITERAL for o, _ in _flat(sub))
            inner = inside_unbounded or (unbounded and not anchored)
            if _walk(list(sub), inside_unbounded=inner):
                return True
        elif op is _POSSESSIVE:
            continue  # possessive repeats never backtrack
        elif op is _sre_constants.SUBPATTERN:
            if _walk(av[-1], inside_unbounded=inside_unbounded):
                return True
        elif op is _sre_constants.BRANCH:
            if any(_walk(branch, inside_unbounded=inside_unbounded) for branch in av[1]):
                return True
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT) and _walk(
            av[1], inside_unbounded=inside_unbounded
        ):
            return True
    return False


_SIMPLE_ATOMS = {
    _sre_constants.LITERAL,
    _sre_constants.NOT_LITERAL,
    _sre_constants.ANY,
    _sre_constants.IN,
}


def cheap_to_run(pattern: str) -> bool:
    """Tell whether running ``pattern`` costs at most quadratic time in the value.

    True only for patterns made of single characters, character classes, ``.``
    and anchors, where a repeat applies to one such character, at most two
    repeats can take more than one (``app-.*``, ``[a-z]+-[0-9]+``) and at most
    eight are optional (``https?``): backtracking then tries at most a
    quadratic number of splits (times 256). Groups, alternation and
    lookarounds are refused. The loader runs a ``re`` pattern over configured
    values only when this holds.

    Args:
        pattern: A ``re`` pattern.

    Returns:
        True when the pattern is that simple.
    """
    try:
        parsed = list(_sre_parse.parse(pattern))
    except Exception:
        return False
    several = optional = 0
    for op, av in parsed:
        if op in _SIMPLE_ATOMS or op is _sre_constants.AT:
            continue
        if op not in _REPEATS:
            return False
        _low, high, sub = av
        if len(sub) != 1 or sub[0][0] not in _SIMPLE_ATOMS:
            return False
        if high > 1:
            several += 1
        else:
            optional += 1
    return several <= 2 and optional <= 8


_WIDE = object()  # a first set that may hold any character


def _first(items: Any) -> tuple[set[int] | object, bool]:
    """The characters a sequence can start with (or ``_WIDE``), and whether it can be empty."""
    chars: set[int] = set()
    for op, av in items:
        if op is _sre_constants.LITERAL:
            chars.add(av)
            return chars, False
        if op is _sre_constants.SUBPATTERN:
            first, nullable = _first(av[-1])
        elif op in _REPEATS or op is _POSSESSIVE:
            first, nullable = _first(av[2])
            nullable = nullable or av[0] == 0
        elif op is _sre_constants.BRANCH:
            parts = [_first(branch) for branch in av[1]]
            if any(f is _WIDE for f, _ in parts):
                return _WIDE, False
            first = set().union(*(f for f, _ in parts if isinstance(f, set)))
            nullable = any(n for _, n in parts)
        elif op in (_sre_constants.AT, _sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
            continue  # zero-width
        else:
            return _WIDE, False  # a class, a wildcard, a back reference...
        if first is _WIDE:
            return _WIDE, False
        if isinstance(first, set):
            chars |= first
        if not nullable:
            return chars, False
    return chars, True


def _branches_overlap(branches: Any) -> bool:
    """Whether two alternatives can start alike (one pass: linear in the branches)."""
    seen: set[int] = set()
    nullable = wide = nonempty = 0
    for branch in branches:
        first, empty = _first(branch)
        if empty:
            nullable += 1
        if first is _WIDE:
            wide += 1
            if nonempty:
                return True
            nonempty += 1
        elif isinstance(first, set) and first:
            if wide or seen & first:
                return True
            seen |= first
            nonempty += 1
        if nullable > 1:
            return True
    return False


def _overlapping_alternation(items: Any, *, inside_unbounded: bool) -> bool:
    for op, av in items:
        if op in _REPEATS:
            unbounded = av[1] == _UNBOUNDED or av[1] > 100
            if _overlapping_alternation(av[2], inside_unbounded=inside_unbounded or unbounded):
                return True
        elif op is _sre_constants.SUBPATTERN:
            if _overlapping_alternation(av[-1], inside_unbounded=inside_unbounded):
                return True
        elif op is _sre_constants.BRANCH:
            branches = av[1]
            if inside_unbounded and _branches_overlap(branches):
                return True
            if any(
                _overlapping_alternation(b, inside_unbounded=inside_unbounded) for b in branches
            ):
                return True
    return False


def _degree(items: Any, copies: int) -> int:
    """How many unbounded repeats of a non-literal (``.*``, ``[a-z]+``) one match runs."""
    total = 0
    for op, av in items:
        if op in _REPEATS:
            _low, high, sub = av
            if high == _UNBOUNDED or high > 100:
                wide = any(o is not _sre_constants.LITERAL for o, _ in _flat(sub))
                total += copies if wide else 0
                total += _degree(sub, copies)
            else:
                total += _degree(sub, min(copies * max(high, 1), 1000))
        elif op is _sre_constants.SUBPATTERN:
            total += _degree(av[-1], copies)
        elif op is _sre_constants.BRANCH:
            total += max((_degree(branch, copies) for branch in av[1]), default=0)
        if total >= 1000:
            return 1000
    return total


def literal_prefix(compiled: object) -> str:
    """The text every full match of a compiled ``re`` pattern starts with.

    Read from the pattern's own parse (leading literal characters, after an
    optional ``^``): a value that does not start with it cannot match, so a
    ``str.startswith`` check may stand in front of the pattern. ``""`` when
    there is none or it cannot be known (another engine, case-insensitive
    matching).

    Args:
        compiled: What :func:`compile_pattern` returned.

    Returns:
        The prefix, possibly empty.
    """
    if not isinstance(compiled, re.Pattern) or not isinstance(compiled.pattern, str):
        return ""
    if compiled.flags & re.IGNORECASE:
        return ""
    try:
        parsed = _sre_parse.parse(compiled.pattern, compiled.flags)
    except Exception:
        return ""
    if parsed.state.flags & re.IGNORECASE:
        return ""
    prefix: list[str] = []
    for op, av in parsed:
        if op is _sre_constants.LITERAL:
            prefix.append(chr(av))
        elif op is _sre_constants.AT and av is _sre_constants.AT_BEGINNING and not prefix:
            continue
        else:
            break
    return "".join(prefix)
