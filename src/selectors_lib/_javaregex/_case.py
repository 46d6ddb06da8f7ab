"""``String.toLowerCase(Locale.ROOT)`` and ``String.equalsIgnoreCase``, as JDK 17 has them.

Both use the JDK's simple case mappings (``_tables``), not Python's, which
follow another Unicode version and full mappings (``"ß".upper()`` is ``"SS"``).
"""

from __future__ import annotations

from . import _tables
from ._charset import java_lower, java_upper, named_set, table_set

__all__ = ["equals_ignore_case", "to_lower_root"]

_SIGMA = 0x03A3
_CASED = table_set(_tables.CASED)
_LETTER = named_set("prop", "javaLetterOrDigit", False)
_MARK = named_set("prop", "M", False)


def _in_word(c: int) -> bool:
    # Java decides "final" within one word of its BreakIterator: letters, digits
    # and combining marks hold a word together, anything else ends it.
    assert _LETTER is not None
    assert _MARK is not None
    return c in _LETTER or c in _MARK


def _final_sigma(points: list[int], index: int) -> bool:
    """``ConditionalSpecialCasing.isFinalCased`` for the sigma at ``index``."""
    i = index - 1
    found = False
    while i >= 0 and _in_word(points[i]):
        if points[i] in _CASED:
            found = True
            break
        i -= 1
    if not found:
        return False
    j = index + 1
    while j < len(points) and _in_word(points[j]):
        if points[j] in _CASED:
            return False
        j += 1
    return True


def to_lower_root(text: str) -> str:
    """``text.toLowerCase(Locale.ROOT)`` in Java.

    Per code point the JDK's simple lowercase mapping, except ``"İ"`` (two code
    points, ``"i̇"``) and a capital sigma at the end of a word (``"ς"``).
    """
    if text.isascii():
        return text.lower()
    points = [ord(c) for c in text]
    out: list[str] = []
    for index, c in enumerate(points):
        if c == _SIGMA:
            out.append("\u03c2" if _final_sigma(points, index) else "\u03c3")
        elif c in _tables.FULL_LOWER:
            out.append(_tables.FULL_LOWER[c])
        else:
            out.append(chr(java_lower(c)))
    return "".join(out)


def equals_ignore_case(a: str, b: str) -> bool:
    """``a.equalsIgnoreCase(b)`` in Java: per code point, equal after simple case mapping."""
    if len(a) != len(b):
        return False
    if a == b:
        return True
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        ux, uy = java_upper(ord(x)), java_upper(ord(y))
        if ux != uy and java_lower(ux) != java_lower(uy):
            return False
    return True
