"""Java character classes: ``[...]`` with union, ``&&`` and negation, and ``\\p{...}``.

A port of ``Pattern.clazz``, ``range``, ``bitsOrSingle``, ``single`` and
``family``; each returns the exact code point set Java's predicate accepts,
case-insensitive variants included.
"""

from __future__ import annotations

from . import _charset as cs
from ._charset import CharSet
from ._nodes import Node
from ._reader import CASE_INSENSITIVE, UNICODE_CASE, UNICODE_CLASS, Reader

__all__ = [
    "ASCII_DIGIT",
    "ASCII_SPACE",
    "ASCII_WORD",
    "DOT",
    "HORIZ",
    "UNIX_DOT",
    "VERT",
    "ClassReader",
]

DOT = CharSet.of(0x0A, 0x0D, 0x85, 0x2028, 0x2029).negate()
UNIX_DOT = CharSet.of(0x0A).negate()
HORIZ = CharSet([(9, 9), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x180E, 0x180E)])
HORIZ = HORIZ | CharSet([(0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)])
VERT = CharSet([(0x0A, 0x0D), (0x85, 0x85), (0x2028, 0x2029)])
ASCII_DIGIT = CharSet([(0x30, 0x39)])
ASCII_WORD = CharSet([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
ASCII_SPACE = CharSet([(0x09, 0x0D), (0x20, 0x20)])
_LATIN1_CI_SINGLES = frozenset((0xFF, 0xB5, 0x49, 0x69, 0x53, 0x73, 0x4B, 0x6B, 0xC5, 0xE5))


class ClassReader(Reader):
    """Reads classes and properties; :meth:`escape` comes from the parser."""

    def escape(self, inclass: bool, create: bool, isrange: bool) -> int | Node | CharSet:
        """``Pattern.escape`` (defined by the parser)."""
        raise NotImplementedError

    def property_escape(self, complement: bool) -> CharSet:
        one_letter = True
        if self.next() != 0x7B:
            self.cursor -= 1
        else:
            one_letter = False
        return self.family(one_letter, complement)

    def single(self, ch: int) -> CharSet:
        if self.has(CASE_INSENSITIVE):
            if self.has(UNICODE_CASE):
                if cs.java_upper(ch) != cs.fold_key(ch):
                    return cs.unicode_single(ch)
            else:
                return cs.ascii_single(ch)
        return CharSet.of(ch)

    def slice_char(self, ch: int) -> CharSet:
        if self.has(CASE_INSENSITIVE):
            return cs.unicode_single(ch) if self.has(UNICODE_CASE) else cs.ascii_single(ch)
        return CharSet.of(ch)

    def bits_or_single(self, ch: int) -> CharSet:
        ci, uc = self.has(CASE_INSENSITIVE), self.has(UNICODE_CASE)
        if ch < 256 and not (ci and uc and ch in _LATIN1_CI_SINGLES):
            if not ci:
                return CharSet.of(ch)
            if ch < 0x80:
                return cs.ascii_single(ch)
            if uc:
                return CharSet.of(ch, cs.java_lower(ch), cs.java_upper(ch))
            return CharSet.of(ch)
        return self.single(ch)

    def clazz(self, consume: bool) -> CharSet:
        prev: CharSet | None = None
        curr: CharSet | None = None
        bits = [cs.EMPTY]  # Java's BitClass: one per class, filled by range()
        has_bits = False
        negate = False
        ch = self.next()
        if ch == 0x5E and self.temp[self.cursor - 1] == 0x5B:
            ch = self.next()
            negate = True
        while True:
            if ch == 0x5B:
                curr = self.clazz(True)
                prev = curr if prev is None else prev | curr
                ch = self.peek()
                continue
            if ch == 0x26:
                ch = self.next()
                if ch == 0x26:
                    ch = self.next()
                    right: CharSet | None = None
                    while ch not in (0x5D, 0x26):
                        if ch == 0x5B:
                            part = self.clazz(True)
                        else:
                            self.cursor -= 1
                            part = self.clazz(False)
                        right = part if right is None else right | part
                        ch = self.peek()
                    if has_bits:
                        if prev is None:
                            prev = curr = bits[0]
                        else:
                            prev = prev | bits[0]
                        has_bits = False
                    if right is not None:
                        curr = right
                    if prev is None:
                        if right is None:
                            raise self.error("Bad class syntax")
                        prev = right
                    else:
                        if curr is None:
                            raise self.error("Bad intersection syntax")
                        prev = prev & curr
                    continue
                self.cursor -= 1
            elif ch == 0 and self.cursor >= self.length:
                raise self.error("Unclosed character class")
            elif ch == 0x5D and (prev is not None or has_bits):
                if consume:
                    self.next()
                if prev is None:
                    prev = bits[0]
                elif has_bits:
                    prev = prev | bits[0]
                return prev.negate() if negate else prev
            got = self.range(bits)
            if got is None:
                has_bits = True
            else:
                curr = got
                prev = curr if prev is None else prev | curr
            ch = self.peek()

    def range(self, bits: list[CharSet]) -> CharSet | None:
        ch = self.peek()
        if ch == 0x5C:
            ch = self.next_escaped()
            if ch in (0x70, 0x50):
                return self.property_escape(ch == 0x50)
            isrange = self.temp[self.cursor + 1] == 0x2D
            self.cursor -= 1
            got = self.escape(True, True, isrange)
            if isinstance(got, CharSet):
                return got
            assert isinstance(got, int)
            ch = got
        else:
            self.next()
        if self.peek() == 0x2D:
            end = self.temp[self.cursor + 1]
            if end == 0x5B:
                return self._bits(ch, bits)
            if end != 0x5D:
                self.next()
                m = self.peek()
                if m == 0x5C:
                    got = self.escape(True, False, True)
                    if not isinstance(got, int):
                        raise self.error("Illegal character range")
                    m = got
                else:
                    self.next()
                if m < ch:
                    raise self.error("Illegal character range")
                if self.has(CASE_INSENSITIVE):
                    if self.has(UNICODE_CASE):
                        return cs.unicode_range(ch, m)
                    return cs.ascii_range(ch, m)
                return CharSet([(ch, m)])
        return self._bits(ch, bits)

    def _bits(self, ch: int, bits: list[CharSet]) -> CharSet | None:
        chosen = self.bits_or_single(ch)
        if ch < 256 and not (
            self.has(CASE_INSENSITIVE) and self.has(UNICODE_CASE) and ch in _LATIN1_CI_SINGLES
        ):
            # Java gathers these in one BitClass per class; a union is the same set.
            bits[0] = bits[0] | chosen
            return None
        return chosen

    def family(self, single_letter: bool, complement: bool) -> CharSet:
        self.next()
        if single_letter:
            name = chr(self.temp[self.cursor])
            self.read()
        else:
            start = self.cursor
            self.temp[self.length] = 0x7D
            while self.read() != 0x7D:
                pass
            self.temp[self.length] = 0
            if self.cursor > self.length:
                raise self.error("Unclosed character family")
            if start + 1 >= self.cursor:
                raise self.error("Empty character family")
            name = "".join(chr(c) for c in self.temp[start : self.cursor - 1])
        ci = self.has(CASE_INSENSITIVE)
        found: CharSet | None = None
        if "=" in name:
            key, value = name.split("=", 1)
            key = key.lower()
            if key in ("sc", "script"):
                found = cs.named_set("script", value, ci)
            elif key in ("blk", "block"):
                found = cs.named_set("block", value, ci)
            elif key in ("gc", "general_category"):
                found = cs.named_set("prop", value, ci)
            if found is None:
                raise self.error(f"Unknown Unicode property {{name=<{key}>, value=<{value}>}}")
        else:
            if name.startswith("In"):
                found = cs.named_set("block", name[2:], ci)
            elif name.startswith("Is"):
                short = name[2:]
                found = cs.named_set("uprop", short, ci) or cs.named_set("prop", short, ci)
                found = found or cs.named_set("script", short, ci)
            else:
                if self.has(UNICODE_CLASS):
                    found = cs.named_set("posix", name, ci)
                found = found or cs.named_set("prop", name, ci)
            if found is None:
                raise self.error(f"Unknown character property name {{{name}}}")
        return found.negate() if complement else found

    # -- groups and quantifiers -----------------------------------------------
