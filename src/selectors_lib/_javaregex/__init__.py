"""Java's ``java.util.regex`` dialect and ``java.lang.String`` case rules, for Python.

Spinnaker's patterns are Java patterns. :func:`compile_java` reads one exactly
as ``Pattern.compile`` does (a port of its parser, with the JDK's own Unicode
tables) and returns an equivalent Python ``re`` pattern, or raises
:class:`JavaPatternError` where Java throws ``PatternSyntaxException`` (or, for
the few constructs Python cannot express, says so). See docs/spinnaker.md.
"""

from __future__ import annotations

import functools
import re

from ._case import equals_ignore_case, to_lower_root
from ._nodes import emit
from ._parser import JavaPatternError, parse

__all__ = [
    "MAX_TRANSLATED_LENGTH",
    "JavaPatternError",
    "compile_java",
    "equals_ignore_case",
    "to_lower_root",
    "translate",
]

#: The longest Python text a pattern may translate to. Some short constructs
#: expand a lot (one ``\b`` is about 32,000 characters of lookarounds over the
#: JDK's letter tables), and ``re.compile`` costs about as much per character:
#: without a bound, a 100-character pattern took seconds to load and a
#: 1,000-character one minutes. At this size compiling takes under a second.
MAX_TRANSLATED_LENGTH = 1 << 18


@functools.lru_cache(maxsize=1024)
def translate(pattern: str) -> str:
    """The Python ``re`` text equivalent to Java ``pattern`` (no flags needed).

    Raises:
        JavaPatternError: Java refuses ``pattern`` or Python cannot express it.
    """
    root, _groups = parse(pattern)
    try:
        text = emit(root)
    except RecursionError:
        raise JavaPatternError(f"groups nest too deeply: {pattern!r:.200}") from None
    if len(text) > MAX_TRANSLATED_LENGTH:
        raise JavaPatternError(
            f"too complex: {pattern!r:.200} translates to {len(text):,} characters of "
            f"Python regex (at most {MAX_TRANSLATED_LENGTH:,}); use fewer \\b, \\B or "
            "Unicode classes"
        )
    return text


def compile_java(pattern: str) -> re.Pattern[str]:
    """Compile a Java pattern to a Python pattern that matches the same strings.

    Raises:
        JavaPatternError: Java refuses ``pattern`` or Python cannot express it.
    """
    text = translate(pattern)
    try:
        return re.compile(text)
    except (re.error, OverflowError, RecursionError) as exc:
        raise JavaPatternError(f"cannot translate {pattern!r:.200} for Python: {exc}") from None
