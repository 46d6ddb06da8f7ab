"""Compiling operator patterns, and spotting the ones that can backtrack badly.

Patterns come from the operator; the values they run against come from clients.
Python's ``re`` backtracks, so a pattern such as ``(a+)+$`` takes exponential time
on a crafted value. Three defences, in order of strength: values longer than
``settings.max_value_length`` never reach a pattern; patterns with nested
unbounded quantifiers are reported at load; and ``regex_engine: re2`` swaps in
RE2, which runs in linear time by construction.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Protocol

__all__ = [
    "ENGINES",
    "Pattern",
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
    """Tell whether a pattern nests an unbounded quantifier inside another.

    Such patterns (``(a+)+``, ``(\\w*)*x``) are the classic source of
    catastrophic backtracking. The check is a syntactic heuristic: a repeated
    group that contains a literal character of its own (``(-[a-z]+)*``) is taken
    to split unambiguously and is not flagged. RE2 is the real defence.

    Args:
        pattern: A ``re`` pattern (invalid patterns are reported elsewhere).

    Returns:
        True when an unbounded repeat contains another unbounded repeat.
    """
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:
        return False
    return _walk(list(parsed), inside_unbounded=False)


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
