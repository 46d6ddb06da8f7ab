"""A port of ``java.util.regex.Pattern``'s parser that builds Python ``re`` nodes.

The structure follows the JDK 17 parser method for method (``expr``,
``sequence``, ``atom``, ``escape``, ``clazz``, ``range``, ``family``,
``group0``, ``closure``): reading a pattern the same way is what makes the
translation refuse exactly what Java refuses and accept exactly what it accepts.
Java resolves flags while it parses, so every node comes out flag-free.
"""

from __future__ import annotations

from . import _charset as cs
from ._charset import CharSet
from ._classes import (
    ASCII_DIGIT,
    ASCII_SPACE,
    ASCII_WORD,
    DOT,
    HORIZ,
    UNIX_DOT,
    VERT,
    ClassReader,
)
from ._nodes import Alt, Behind, Group, LookbehindError, Node, Repeat, Seq, Text, emit_set, width
from ._reader import (
    CANON_EQ,
    CASE_INSENSITIVE,
    COMMENTS,
    DOTALL,
    MULTILINE,
    UNICODE_CASE,
    UNICODE_CLASS,
    UNIX_LINES,
    JavaPatternError,
)

__all__ = ["JavaPatternError", "parse"]

MAX_REPS = 0x7FFFFFFF
#: Longest run of combining marks \\b follows back to its base character.
MAX_MARK_RUN = 2


# \R backtracks from \r\n to \r like an alternation, except as the atom of a
# quantifier: Java's Curly and Ques take an atom's first match per repetition.
_LINE_ENDING = Alt((Text("\\r\\n", 2, 2), Text("[\\n\\x0b\\x0c\\r\\x85\\u2028\\u2029]", 1, 1)))


class _Parser(ClassReader):
    def expr(self) -> Node:
        branches = [self.sequence()]
        while self.peek() == 0x7C:
            self.next()
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else Alt(tuple(branches))

    def sequence(self) -> Node:
        items: list[Node] = []
        while True:
            ch = self.peek()
            node: Node | None
            if ch == 0x28:
                node = self.group0()
                if node is not None:
                    items.append(node)
                continue
            if ch == 0x5B:
                node = self.char(self.clazz(True))
            elif ch == 0x5C:
                ch = self.next_escaped()
                if ch in (0x70, 0x50):
                    node = self.char(self.property_escape(ch == 0x50))
                else:
                    self.cursor -= 1
                    node = self.atom()
            elif ch == 0x5E:
                self.next()
                node = self.caret()
            elif ch == 0x24:
                self.next()
                node = self.dollar(self.has(MULTILINE))
            elif ch == 0x2E:
                self.next()
                if self.has(DOTALL):
                    node = self.char(cs.ALL)
                else:
                    node = self.char(UNIX_DOT if self.has(UNIX_LINES) else DOT)
            elif ch in (0x7C, 0x29):
                break
            elif ch in (0x3F, 0x2A, 0x2B):
                self.next()
                raise self.error(f"Dangling meta character '{chr(ch)}'")
            elif ch == 0 and self.cursor >= self.length:
                break
            else:
                node = self.atom()
            items.append(self.closure(node))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def atom(self) -> Node:
        chars: list[int] = []
        prev = -1
        ch = self.peek()
        while True:
            if ch in (0x2A, 0x2B, 0x3F, 0x7B):
                if len(chars) > 1:
                    self.cursor = prev
                    chars.pop()
                break
            if ch in (0x24, 0x2E, 0x5E, 0x28, 0x5B, 0x7C, 0x29):
                break
            if ch == 0x5C:
                ch = self.next_escaped()
                if ch in (0x70, 0x50):
                    if chars:
                        self.cursor -= 1
                        break
                    return self.char(self.property_escape(ch == 0x50))
                self.cursor -= 1
                prev = self.cursor
                result = self.escape(False, not chars, False)
                if isinstance(result, int):
                    chars.append(result)
                    ch = self.peek()
                    continue
                if not chars:
                    assert not isinstance(result, CharSet)  # only classes get sets
                    return result
                self.cursor = prev
                break
            if ch == 0 and self.cursor >= self.length:
                break
            prev = self.cursor
            chars.append(ch)
            ch = self.next()
        if len(chars) == 1:
            return self.char(self.single(chars[0]))
        return Seq(tuple(self.char(self.slice_char(c)) for c in chars))

    # -- characters -----------------------------------------------------------
    @staticmethod
    def char(chars: CharSet) -> Node:
        return Text(emit_set(chars), 1, 1)

    def escape(self, inclass: bool, create: bool, isrange: bool) -> int | Node | CharSet:
        """``Pattern.escape``: a code point, or a node/set (Java's ``-1``)."""
        ch = self.skip()
        c = chr(ch) if ch < 0x110000 else ""
        unicode_class = self.has(UNICODE_CLASS)
        if c == "0":
            return self.octal()
        if c in "123456789" and c:
            if inclass:
                raise self.error("Illegal/unsupported escape sequence")
            return self.ref(ch - 0x30)
        sets = {
            "d": cs.named_set("uprop", "DIGIT", False) if unicode_class else ASCII_DIGIT,
            "s": cs.named_set("uprop", "WHITE_SPACE", False) if unicode_class else ASCII_SPACE,
            "w": cs.named_set("uprop", "WORD", False) if unicode_class else ASCII_WORD,
            "h": HORIZ,
            "v": VERT,
        }
        if c.lower() in sets and c and not (c == "v" and isrange):
            chosen = sets[c.lower()]
            assert chosen is not None
            chosen = chosen.negate() if c.isupper() else chosen
            return chosen if inclass else self.char(chosen)
        simple = {"a": 7, "e": 0x1B, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
        if c in simple and c:
            return simple[c]
        if inclass and c in "ABGRXZbkz" and c:
            raise self.error("Illegal/unsupported escape sequence")
        if c in {"A", "G"}:
            return Text("\\A", 0, 0)
        if c == "Z":
            return self.dollar(False)
        if c == "z":
            return Text("\\Z", 0, 0)
        if c == "R":
            return _LINE_ENDING
        if c in {"b", "B"}:
            # As JDK 17: only \b reads a following "{", as \b{g}; \b{2} and \B{2}
            # are boundaries repeated (Java accepts them).
            if c == "b" and create and self.peek() == 0x7B:
                if self.skip() == 0x67:
                    if self.read() == 0x7D:
                        raise self.error("\\b{g} (grapheme cluster boundaries) is not supported")
                    raise self.error("Illegal/unsupported escape sequence")
                self.cursor -= 2
            return self.bound(c == "b")
        if c == "X":
            raise self.error("\\X (grapheme clusters) is not supported")
        if c == "N":
            raise self.error("\\N{name} is not supported")
        if c == "c":
            if self.cursor < self.length:
                return self.read() ^ 64
            raise self.error("Illegal control escape sequence")
        if c == "u":
            return self.unicode_escape()
        if c == "x":
            return self.hex_escape()
        if c == "k":
            if self.read() != 0x3C:
                raise self.error("\\k is not followed by '<' for named capturing group")
            name = self.groupname(self.read())
            if name not in self.names:
                raise self.error(f"named capturing group <{name}> does not exist")
            return self.backref(self.names[name])
        if c in "CEFIJKLMOPQTUYgijlmopqy" and c:
            raise self.error("Illegal/unsupported escape sequence")
        return ch

    def ref(self, number: int) -> Node:
        while True:
            ch = self.peek()
            if not 0x30 <= ch <= 0x39:
                break
            bigger = number * 10 + ch - 0x30
            if self.groups - 1 < bigger:
                break
            number = bigger
            self.read()
        return self.backref(number)

    def backref(self, number: int) -> Node:
        if number >= self.groups:
            # Java compiles a reference to a group that does not exist (yet); it
            # never matches, unless a later group takes that number.
            self.forward_refs.append(number)
            return Text("(?!)", 0, 0)
        if number in self.open_groups:
            raise self.error("a back reference inside its own group is not supported")
        ref = f"(?:(?P={self._group_name(number)}))"
        if self.has(CASE_INSENSITIVE):
            ref = f"(?i:{ref})" if self.has(UNICODE_CASE) else f"(?ai:{ref})"
        return Text(ref, 0, None)

    @staticmethod
    def _group_name(number: int) -> str:
        return f"g{number}"

    # -- anchors --------------------------------------------------------------
    def caret(self) -> Node:
        if not self.has(MULTILINE):
            return Text("\\A", 0, 0)
        if self.has(UNIX_LINES):
            return Text("(?!\\Z)(?:\\A|(?<=\\n))", 0, 0)
        return Text("(?!\\Z)(?:\\A|(?<=[\\n\\x85\\u2028\\u2029])|(?<=\\r)(?!\\n))", 0, 0)

    def dollar(self, multiline: bool) -> Node:
        if self.has(UNIX_LINES):
            return Text("(?=\\n|\\Z)" if multiline else "(?=\\n?\\Z)", 0, 0)
        if multiline:
            return Text("(?:(?=[\\r\\x85\\u2028\\u2029])|(?<!\\r)(?=\\n)|\\Z)", 0, 0)
        return Text(
            "(?:(?=\\r\\n\\Z)|(?=[\\r\\x85\\u2028\\u2029]\\Z)|(?<!\\r)(?=\\n\\Z)|\\Z)", 0, 0
        )

    def bound(self, boundary: bool) -> Node:
        if self.has(UNICODE_CLASS):
            word = cs.named_set("uprop", "WORD", False)
        else:
            word = cs.named_set("prop", "javaLetterOrDigit", False)
            word = None if word is None else word | CharSet.of(0x5F)
        base = cs.named_set("prop", "javaLetterOrDigit", False)
        marks = cs.named_set("prop", "Mn", False)
        assert word is not None
        assert base is not None
        assert marks is not None
        w, b, m = emit_set(word), emit_set(base), emit_set(marks)
        # A non-spacing mark counts as a word character after a letter or digit
        # (Pattern.hasBaseCharacter); Python's fixed-width lookbehind follows
        # runs of up to MAX_MARK_RUN marks.
        runs = "|".join(f"(?<={b}{m}{{{k}}})" for k in range(1, MAX_MARK_RUN + 1))
        left = f"(?:(?<={w})|{runs})"
        right = f"(?:(?={w})|(?={m})(?:(?<={b})|{runs}))"
        if boundary:
            return Text(f"(?:(?={left})(?!{right})|(?!{left})(?={right}))", 0, 0)
        return Text(f"(?:(?={left})(?={right})|(?!{left})(?!{right}))", 0, 0)

    # -- classes --------------------------------------------------------------
    def group0(self) -> Node | None:
        saved = self.flags
        ch = self.next()
        node: Node
        if ch == 0x3F:
            ch = self.skip()
            if ch == 0x3A:
                node = Group("(?:", self.expr())
            elif ch in (0x3D, 0x21):
                node = Group("(?=" if ch == 0x3D else "(?!", self.expr())
            elif ch == 0x3E:
                node = Group("(?>", self.expr())
            elif ch == 0x3C:
                ch = self.read()
                if ch not in (0x3D, 0x21):
                    name = self.groupname(ch)
                    if name in self.names:
                        raise self.error(f"Named capturing group <{name}> is already defined")
                    number = self.groups
                    self.names[name] = number
                    node = self._capture(number)
                else:
                    child = self.expr()
                    if width(child)[1] is None:
                        raise self.error(
                            "Look-behind group does not have an obvious maximum length"
                        )
                    node = Behind(ch == 0x3D, child)
                    try:
                        Text(_lookbehind_text(node), 0, 0)
                    except LookbehindError as exc:
                        raise self.error(
                            f"variable-length look-behind cannot be rewritten: {exc}"
                        ) from None
            elif ch in (0x24, 0x40):
                raise self.error("Unknown group type")
            else:
                self.cursor -= 1
                self.add_flags()
                ch = self.read()
                if ch == 0x29:
                    return None
                if ch != 0x3A:
                    raise self.error("Unknown inline modifier")
                node = Group("(?:", self.expr())
        else:
            node = self._capture(self.groups)
        self.accept(0x29, "Unclosed group")
        self.flags = saved
        return self.closure(node)

    def _capture(self, number: int) -> Node:
        self.groups += 1
        self.open_groups.add(number)
        child = self.expr()
        self.open_groups.discard(number)
        return Group(f"(?P<{self._group_name(number)}>", child)

    def add_flags(self) -> None:
        letters = {"i": CASE_INSENSITIVE, "m": MULTILINE, "s": DOTALL, "d": UNIX_LINES}
        letters |= {"u": UNICODE_CASE, "c": CANON_EQ, "x": COMMENTS}
        letters["U"] = UNICODE_CLASS | UNICODE_CASE
        ch = self.peek()
        adding = True
        while True:
            c = chr(ch) if ch < 0x80 else ""
            if c == "-" and adding:
                adding = False
            elif c in letters and c:
                if adding:
                    self.flags |= letters[c]
                else:
                    self.flags &= ~letters[c]
                if c == "c" and adding:
                    raise self.error("CANON_EQ (?c) is not supported")
            else:
                return
            ch = self.next()

    def closure(self, node: Node) -> Node:
        ch = self.peek()
        if node == _LINE_ENDING and ch in (0x3F, 0x2A, 0x2B, 0x7B):
            node = Group("(?>", node)
        if ch == 0x3F:
            return Repeat(node, 0, 1, self.qtype())
        if ch == 0x2A:
            return Repeat(node, 0, None, self.qtype())
        if ch == 0x2B:
            return Repeat(node, 1, None, self.qtype())
        if ch != 0x7B:
            return node
        ch = self.skip()
        if not 0x30 <= ch <= 0x39:
            raise self.error("Illegal repetition")
        low = 0
        while 0x30 <= ch <= 0x39:
            low = low * 10 + ch - 0x30
            if low > MAX_REPS:
                raise self.error("Illegal repetition range")
            ch = self.read()
        high = low
        if ch == 0x2C:
            ch = self.read()
            if ch == 0x7D:
                self.cursor -= 1
                return Repeat(node, low, None, self.qtype())
            high = 0
            while 0x30 <= ch <= 0x39:
                high = high * 10 + ch - 0x30
                if high > MAX_REPS:
                    raise self.error("Illegal repetition range")
                ch = self.read()
        if ch != 0x7D:
            raise self.error("Unclosed counted closure")
        if high < low:
            raise self.error("Illegal repetition range")
        self.cursor -= 1
        return Repeat(node, low, high, self.qtype())

    def qtype(self) -> str:
        ch = self.next()
        if ch in (0x3F, 0x2B):
            self.next()
            return chr(ch)
        return ""


def _lookbehind_text(node: Behind) -> str:
    from ._nodes import lookbehind

    return lookbehind(node)


def parse(pattern: str) -> tuple[Node, int]:
    """Parse a Java pattern.

    Returns:
        The node tree and the number of capturing groups.

    Raises:
        JavaPatternError: Java refuses the pattern, or the translation cannot
            express it (the message says which).
    """
    parser = _Parser(pattern)
    try:
        root = parser.expr()
    except RecursionError:
        # Java's recursive parser overflows its stack too, only deeper.
        raise JavaPatternError(f"groups or classes nest too deeply: {pattern!r:.200}") from None
    if parser.length != parser.cursor:
        if parser.peek() == 0x29:
            raise parser.error("Unmatched closing ')'")
        raise parser.error("Unexpected internal error")
    if any(ref < parser.groups for ref in parser.forward_refs):
        raise JavaPatternError(
            f"a back reference to a later group is not supported: {pattern!r:.200}"
        )
    return root, parser.groups - 1
