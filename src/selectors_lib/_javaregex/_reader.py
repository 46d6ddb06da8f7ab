"""Reading a Java pattern as ``java.util.regex.Pattern`` does: cursor, comments, escapes.

The JDK reads a pattern as an array of code points ending in two zeros, after
rewriting ``\\Q...\\E`` quotes into escapes; ``peek``/``read``/``next`` skip
white space and ``#`` comments under ``(?x)``, everywhere, classes included.
"""

from __future__ import annotations

from selectors_lib._errors import SelectorsError

from ._charset import MAX_CODE_POINT

__all__ = ["JavaPatternError", "Reader"]

CASE_INSENSITIVE, MULTILINE, DOTALL, UNIX_LINES = 0x02, 0x08, 0x20, 0x01
UNICODE_CASE, CANON_EQ, COMMENTS, UNICODE_CLASS = 0x40, 0x80, 0x04, 0x100
MAX_REPS = 0x7FFFFFFF
#: Longest run of combining marks \b follows back to its base character.
MAX_MARK_RUN = 2


class JavaPatternError(SelectorsError, ValueError):
    """Java would refuse the pattern (``PatternSyntaxException``), or Python cannot say it.

    The message starts with Java's own description (``Illegal repetition``) or
    names the construct the translation cannot express, then the index.
    """


def _is_ascii_space(c: int) -> bool:
    return c == 0x20 or 0x09 <= c <= 0x0D


def _is_hex(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66


def _is_alpha(c: int) -> bool:
    return 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def _remove_qe_quoting(temp: list[int]) -> list[int]:
    """``Pattern.RemoveQEQuoting``: rewrite ``\\Q...\\E`` into escaped literals."""
    n = len(temp)
    i = 0
    while i < n - 1:
        if temp[i] != 0x5C:
            i += 1
        elif temp[i + 1] != 0x51:
            i += 2
        else:
            break
    if i >= n - 1:
        return temp
    out = temp[:i]
    i += 2
    in_quote = begin_quote = True
    padded = [*temp, 0]
    while i < n:
        c = padded[i]
        i += 1
        if c >= 0x80 or _is_alpha(c):
            out.append(c)
        elif 0x30 <= c <= 0x39:
            if begin_quote:
                out.extend((0x5C, 0x78, 0x33))  # \x3 then the digit: "\x3N"
            out.append(c)
        elif c != 0x5C:
            if in_quote:
                out.append(0x5C)
            out.append(c)
        elif in_quote:
            if padded[i] == 0x45:
                i += 1
                in_quote = False
            else:
                out.extend((0x5C, 0x5C))
        elif padded[i] == 0x51:
            i += 1
            in_quote = begin_quote = True
            continue
        else:
            out.append(c)
            if i != n:
                out.append(padded[i])
                i += 1
        begin_quote = False
    return out


class Reader:
    """The parser's cursor over a pattern's code points, and its escape readers."""

    def __init__(self, pattern: str) -> None:
        self.source = pattern
        temp = _remove_qe_quoting([ord(ch) for ch in pattern])
        self.length = len(temp)
        self.temp = [*temp, 0, 0]
        self.cursor = 0
        self.flags = 0
        self.groups = 1  # capturingGroupCount: group 0 is the whole match
        self.open_groups: set[int] = set()
        self.names: dict[str, int] = {}
        self.forward_refs: list[int] = []

    # -- reading, as Pattern.peek/read/next/skip with COMMENTS -------------------
    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def error(self, message: str) -> JavaPatternError:
        return JavaPatternError(f"{message} near index {self.cursor - 1}: {self.source!r:.200}")

    def _past_ws(self, ch: int, consume: bool) -> int:
        while _is_ascii_space(ch) or ch == 0x23:
            while _is_ascii_space(ch):
                if consume:
                    ch = self.temp[self.cursor]
                    self.cursor += 1
                else:
                    self.cursor += 1
                    ch = self.temp[self.cursor]
            if ch == 0x23:
                ch = self._past_line(consume)
        return ch

    def _past_line(self, consume: bool) -> int:
        if consume:
            ch = self.temp[self.cursor]
            self.cursor += 1
        else:
            self.cursor += 1
            ch = self.temp[self.cursor]
        while ch != 0 and not self._line_separator(ch):
            if consume:
                ch = self.temp[self.cursor]
                self.cursor += 1
            else:
                self.cursor += 1
                ch = self.temp[self.cursor]
        if ch == 0 and self.cursor > self.length:
            self.cursor = self.length
            ch = self.temp[self.cursor]
            if consume:
                self.cursor += 1
        return ch

    def _line_separator(self, ch: int) -> bool:
        if self.has(UNIX_LINES):
            return ch == 0x0A
        return ch in (0x0A, 0x0D, 0x85) or (ch | 1) == 0x2029

    def peek(self) -> int:
        ch = self.temp[self.cursor]
        return self._past_ws(ch, False) if self.has(COMMENTS) else ch

    def read(self) -> int:
        ch = self.temp[self.cursor]
        self.cursor += 1
        return self._past_ws(ch, True) if self.has(COMMENTS) else ch

    def next(self) -> int:
        self.cursor += 1
        ch = self.temp[self.cursor]
        return self._past_ws(ch, False) if self.has(COMMENTS) else ch

    def next_escaped(self) -> int:
        self.cursor += 1
        return self.temp[self.cursor]

    def skip(self) -> int:
        ch = self.temp[self.cursor + 1]
        self.cursor += 2
        return ch

    def accept(self, ch: int, message: str) -> None:
        if self.read() != ch:
            raise self.error(message)

    # -- structure ------------------------------------------------------------
    def octal(self) -> int:
        n = self.read()
        if 0x30 <= n <= 0x37:
            m = self.read()
            if 0x30 <= m <= 0x37:
                o = self.read()
                if 0x30 <= o <= 0x37 and 0x30 <= n <= 0x33:
                    return (n - 0x30) * 64 + (m - 0x30) * 8 + (o - 0x30)
                self.cursor -= 1
                return (n - 0x30) * 8 + (m - 0x30)
            self.cursor -= 1
            return n - 0x30
        raise self.error("Illegal octal escape sequence")

    def hex_escape(self) -> int:
        n = self.read()
        if _is_hex(n):
            m = self.read()
            if _is_hex(m):
                return int(chr(n) + chr(m), 16)
        elif n == 0x7B and _is_hex(self.peek()):
            value = 0
            n = self.read()
            while _is_hex(n):
                value = value * 16 + int(chr(n), 16)
                if value > MAX_CODE_POINT:
                    raise self.error("Hexadecimal codepoint is too big")
                n = self.read()
            if n != 0x7D:
                raise self.error("Unclosed hexadecimal escape sequence")
            return value
        raise self.error("Illegal hexadecimal escape sequence")

    def _uxxxx(self) -> int:
        value = 0
        for _ in range(4):
            ch = self.read()
            if not _is_hex(ch):
                raise self.error("Illegal Unicode escape sequence")
            value = value * 16 + int(chr(ch), 16)
        return value

    def unicode_escape(self) -> int:
        n = self._uxxxx()
        if 0xD800 <= n <= 0xDBFF:
            saved = self.cursor
            if self.read() == 0x5C and self.read() == 0x75:
                n2 = self._uxxxx()
                if 0xDC00 <= n2 <= 0xDFFF:
                    return 0x10000 + ((n - 0xD800) << 10) + (n2 - 0xDC00)
            self.cursor = saved
        return n

    def groupname(self, ch: int) -> str:
        if not _is_alpha(ch):
            raise self.error("capturing group name does not start with a Latin letter")
        name = [chr(ch)]
        ch = self.read()
        while _is_alpha(ch) or 0x30 <= ch <= 0x39:
            name.append(chr(ch))
            ch = self.read()
        if ch != 0x3E:
            raise self.error("named capturing group is missing trailing '>'")
        return "".join(name)
