"""How the ``selectors-lib`` command writes: styles, tables, escaped text, documents.

Everything shown comes from configuration files or the command line, so nothing
here writes a control or format character raw to a terminal.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["_Style", "_UsageError", "_document", "_json_text", "_safe", "_table"]


class _UsageError(Exception):
    """A command line that parsed but makes no sense (unknown rule, bad --attr)."""


class _Style:
    """ANSI styling, on only for a terminal and never with ``NO_COLOR`` set."""

    def __init__(self, stream: TextIO, mode: str) -> None:
        if mode == "always":
            self.enabled = True
        elif mode == "never":
            self.enabled = False
        else:
            isatty = getattr(stream, "isatty", None)
            self.enabled = (
                not os.environ.get("NO_COLOR")
                and os.environ.get("TERM") != "dumb"
                and callable(isatty)
                and bool(isatty())
            )

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def good(self, text: str) -> str:
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)


def _safe(text: object, limit: int = 200) -> str:
    """Printable text: control characters escaped, long values cut.

    Names and values come from configuration files and the command line; a
    terminal escape sequence in a rule name must not reach the terminal.
    """
    value = str(text)
    cut = len(value) > limit
    value = value[:limit]
    if any(unicodedata.category(c)[0] == "C" for c in value):
        value = "".join(c if unicodedata.category(c)[0] != "C" else repr(c)[1:-1] for c in value)
    return value + ("..." if cut else "")


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned columns; the last column is not padded."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append((indent + "  ".join([*cells, row[-1]])).rstrip())
    return "\n".join(lines) + "\n"


def _unsafe(ch: str) -> bool:
    # Category C (controls, including C1 such as U+009B CSI; format characters
    # such as bidi overrides; surrogates; private use; unassigned) and the
    # line/paragraph separators: none may reach a terminal raw.
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _json_text(data: Any) -> str:
    """JSON with non-ASCII kept readable but every unsafe character ``\\u``-escaped.

    ``ensure_ascii=False`` escapes only characters below U+0020; C1 controls and
    the like would be printed raw. Outside strings the output holds only ASCII
    punctuation, digits, letters, spaces and newlines, so every unsafe character
    is inside a string, where a ``\\u`` escape means the same character.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if text.isascii() and text.replace("\n", "").isprintable():
        return text
    out = []
    for ch in text:
        if ch != "\n" and _unsafe(ch):
            # json.dumps with ensure_ascii=True escapes exactly one character,
            # as a surrogate pair beyond the BMP.
            out.append(json.dumps(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


def _document(data: Any, *, as_json: bool, out: TextIO) -> None:
    """Write a mapping as YAML when PyYAML is installed (and JSON not asked for), else JSON.

    Either way no control or format character is written raw (see :func:`_json_text`).
    """
    if not as_json:
        try:
            import yaml
        except ImportError:
            pass
        else:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
            if any(ch != "\n" and _unsafe(ch) for ch in text):
                # PyYAML prints some of them raw (U+0085, bidi controls) when
                # allowed Unicode; without it every non-ASCII character is escaped.
                text = yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
            out.write(text)
            return
    out.write(_json_text(data) + "\n")
