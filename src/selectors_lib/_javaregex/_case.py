"""``String.toLowerCase(Locale.ROOT)`` and ``String.equalsIgnoreCase``, as JDK 17 has them.

Both use the JDK's simple case mappings (``_tables``), not Python's, which
follow another Unicode version and full mappings (``"ß".upper()`` is ``"SS"``).
"""

from __future__ import annotations

from . import _tables
from ._charset import CharSet, java_lower, java_upper, named_set, table_set

__all__ = ["equals_ignore_case", "to_lower_root"]

_SIGMA = 0x03A3
_CASED = table_set(_tables.CASED)


def _prop(name: str) -> CharSet:
    found = named_set("prop", name, False)
    assert found is not None
    return found


# The JDK's legacy word BreakIterator (sun.text BreakIteratorRules), which
# isFinalCased consults: a word is letters with dashes, apostrophes, quotes or
# periods between them; a number is digits with , ' " . between them; words and
# numbers chain; marks and format characters stick to what precedes them.
_LETTER = _prop("L") | _prop("Mc")
_DIGIT = _prop("N")
_IGNORED = _prop("Mn") | _prop("Me")
_FORMAT = _prop("Cf")
_MID_WORD = _prop("Pd") | _prop("Pc") | CharSet.of(0xAD, 0x2027, 0x22, 0x27, 0x2E)
_MID_NUMBER = CharSet.of(0x22, 0x27, 0x2C, 0x66B, 0x2E)


def _kind(c: int) -> str:
    # A character a rule names (the soft hyphen) is not "ignored".
    if c in _MID_WORD or c in _MID_NUMBER:
        return "O"
    if c in _LETTER:
        return "L"
    if c in _DIGIT:
        return "D"
    if c in _FORMAT:
        return "F"
    return "I" if c in _IGNORED else "O"


def _segments(points: list[int]) -> list[int]:
    """A segment number per position: positions in one word share one."""
    kinds = [_kind(c) for c in points]
    n = len(points)
    out = [0] * n
    i = segment = 0
    while i < n:
        start = i
        if kinds[i] in "LD":
            last = kinds[i]
            i += 1
            while i < n:
                kind = kinds[i]
                if kind in "LD":
                    last = kind
                elif kind not in "IF":
                    # A dash, apostrophe or period joins only when the next
                    # character itself continues the word (or number).
                    mids = _MID_WORD if last == "L" else _MID_NUMBER
                    t = i + 1
                    while t < n and kinds[t] == "F":  # format characters are transparent
                        t += 1
                    if not (points[i] in mids and t < n and kinds[t] == last):
                        break
                    i = t
                i += 1
        else:
            i += 1
            while i < n and kinds[i] in "IF":
                i += 1
        for k in range(start, i):
            out[k] = segment
        segment += 1
    return out


def _final_sigma(points: list[int], index: int, segments: list[int]) -> bool:
    """``ConditionalSpecialCasing.isFinalCased`` for the sigma at ``index``."""
    word = segments[index]
    if index >= 2 and points[index - 1] > 0xFFFF:
        # Measured on JDK 17: after a supplementary character that does not
        # open the text, the word iterator reports a boundary before the sigma.
        return False
    # A word's positions are contiguous: walk out from the sigma only to the
    # word's ends (scanning the whole text for each sigma was quadratic, a
    # quarter second for one 4 KiB request value of "Σ Σ Σ ...").
    i = index - 1
    while i >= 0 and segments[i] == word and points[i] not in _CASED:
        i -= 1
    if i < 0 or segments[i] != word:
        return False
    i, n = index + 1, len(points)
    while i < n and segments[i] == word and points[i] not in _CASED:
        i += 1
    return i == n or segments[i] != word


def to_lower_root(text: str) -> str:
    """``text.toLowerCase(Locale.ROOT)`` in Java.

    Per code point the JDK's simple lowercase mapping, except ``"İ"`` (two code
    points, ``"i̇"``) and a capital sigma at the end of a word (``"ς"``).
    """
    if text.isascii():
        return text.lower()
    points = [ord(c) for c in text]
    segments = _segments(points) if _SIGMA in points else []
    out: list[str] = []
    for index, c in enumerate(points):
        if c == _SIGMA:
            out.append("\u03c2" if _final_sigma(points, index, segments) else "\u03c3")
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
