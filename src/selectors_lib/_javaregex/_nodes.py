"""The translated pattern as a small tree, and its Python ``re`` text.

The parser resolves every Java flag while it reads (as ``java.util.regex``
does), so a node never depends on flags: character matchers are explicit code
point sets, anchors explicit lookarounds. What remains to compute here is each
node's width, for Java's bounded variable-length lookbehind, which Python's
fixed-width lookbehind expresses as one lookbehind per possible width.
"""

from __future__ import annotations

import functools
import itertools

import attrs

from selectors_lib._errors import SelectorsError

from ._charset import CharSet

__all__ = ["Node", "emit_set", "lookbehind", "width"]

#: How many fixed-width alternatives a variable-length lookbehind may become.
MAX_LOOKBEHIND_VARIANTS = 64


@attrs.frozen
class Text:
    """Python pattern text of a known width (a literal, a class, an assertion)."""

    text: str
    min: int
    max: int | None


@attrs.frozen
class Seq:
    items: tuple[Node, ...]


@attrs.frozen
class Alt:
    branches: tuple[Node, ...]


@attrs.frozen
class Group:
    """``open`` + child + ``)``: ``(``, ``(?:``, ``(?>``, ``(?P<n>``, ``(?=``, ``(?!``."""

    open: str
    child: Node

    @property
    def capturing(self) -> bool:
        return self.open == "(" or self.open.startswith("(?P<")

    @property
    def zero_width(self) -> bool:
        return self.open in ("(?=", "(?!")


@attrs.frozen
class Repeat:
    child: Node
    min: int
    max: int | None
    mode: str  # "", "?" (lazy) or "+" (possessive)


@attrs.frozen
class Behind:
    """A Java lookbehind, positive or negative."""

    positive: bool
    child: Node


Node = Text | Seq | Alt | Group | Repeat | Behind


_PLAIN_BELOW_0X80 = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_!\"%',/:;<=>@`~"
)


def _escape(c: int) -> str:
    # Python's parser reads a plain character many times faster than an escape,
    # which matters for the JDK's big classes (\p{L} has hundreds of ranges).
    if (c >= 0xA0 and not 0xD800 <= c <= 0xDFFF) or chr(c) in _PLAIN_BELOW_0X80:
        return chr(c)
    if c <= 0xFF:
        return f"\\x{c:02x}"
    if c <= 0xFFFF:
        return f"\\u{c:04x}"
    return f"\\U{c:08x}"


@functools.lru_cache(maxsize=4096)
def emit_set(chars: CharSet) -> str:
    """Python text matching exactly one code point of ``chars``."""
    single = chars.single()
    if single is not None:
        return _escape(single)
    if not chars.ranges:
        return "(?!)"
    negated = chars.negate()
    shorter = negated.ranges and len(negated.ranges) < len(chars.ranges)
    body, prefix = (negated, "^") if shorter else (chars, "")
    parts = []
    for low, high in body.ranges:
        parts.append(_escape(low) if low == high else f"{_escape(low)}-{_escape(high)}")
    return "[" + prefix + "".join(parts) + "]"


def width(node: Node) -> tuple[int, int | None]:
    """The fewest and most code points ``node`` can match (None: unbounded)."""
    if isinstance(node, Text):
        return node.min, node.max
    if isinstance(node, Seq):
        low: int = 0
        high: int | None = 0
        for item in node.items:
            a, b = width(item)
            low += a
            high = None if high is None or b is None else high + b
        return low, high
    if isinstance(node, Alt):
        widths = [width(b) for b in node.branches]
        highs = [b for _, b in widths]
        return min(a for a, _ in widths), None if None in highs else max(highs)  # type: ignore[type-var]
    if isinstance(node, Group):
        return (0, 0) if node.zero_width else width(node.child)
    if isinstance(node, Behind):
        return 0, 0
    a, b = width(node.child)
    if node.max is None:
        return a * node.min, None if b != 0 else 0
    return a * node.min, None if b is None else b * node.max


def emit(node: Node) -> str:
    """The Python ``re`` text of ``node``."""
    if isinstance(node, Text):
        return node.text
    if isinstance(node, Seq):
        return "".join(emit(item) for item in node.items)
    if isinstance(node, Alt):
        return "(?:" + "|".join(emit(b) for b in node.branches) + ")"
    if isinstance(node, Group):
        return node.open + emit(node.child) + ")"
    if isinstance(node, Behind):
        return lookbehind(node)
    if node.max is None:
        count = {0: "*", 1: "+"}.get(node.min, f"{{{node.min},}}")
    elif node.min == 0 and node.max == 1:
        count = "?"
    else:
        count = f"{{{node.min}}}" if node.min == node.max else f"{{{node.min},{node.max}}}"
    return "(?:" + emit(node.child) + ")" + count + node.mode


class LookbehindError(SelectorsError, ValueError):
    """A Java lookbehind that Python's fixed-width lookbehind cannot express."""


def _variants(node: Node) -> list[str]:
    """Fixed-width Python texts whose union matches what ``node`` matches."""
    low, high = width(node)
    if low == high:
        return [emit(node)]
    if isinstance(node, Text):  # pragma: no cover - Texts are fixed width
        return [node.text]
    if isinstance(node, Seq):
        parts = [_variants(item) for item in node.items]
        total = 1
        for p in parts:
            total *= len(p)
            if total > MAX_LOOKBEHIND_VARIANTS:
                raise LookbehindError("too many alternative widths")
        return ["".join(combo) for combo in itertools.product(*parts)]
    if isinstance(node, Alt):
        out = [v for b in node.branches for v in _variants(b)]
        if len(out) > MAX_LOOKBEHIND_VARIANTS:
            raise LookbehindError("too many alternative widths")
        return out
    if isinstance(node, Group):
        if node.capturing:
            raise LookbehindError("a capturing group inside it would be repeated")
        return [node.open + v + ")" for v in _variants(node.child)]
    if isinstance(node, Repeat):
        if node.max is None:  # pragma: no cover - refused by the parser (no maximum)
            raise LookbehindError("unbounded repetition")
        inner = _variants(node.child)
        out = []
        for count in range(node.min, node.max + 1):
            if len(inner) == 1:
                out.append(f"(?:{inner[0]}){{{count}}}")
            else:
                combos = itertools.product(inner, repeat=count)
                out.extend("".join(f"(?:{v})" for v in combo) for combo in combos)
            if len(out) > MAX_LOOKBEHIND_VARIANTS:
                raise LookbehindError("too many alternative widths")
        return out
    raise LookbehindError("unsupported construct")  # pragma: no cover


def lookbehind(node: Behind) -> str:
    """Java's lookbehind in Python: one fixed-width lookbehind per width.

    Java tries every start from ``i - min`` to ``i - max``; the union of
    fixed-width lookbehinds accepts exactly when one of those starts does.

    Raises:
        LookbehindError: The rewrite would repeat a capturing group or grow
            beyond :data:`MAX_LOOKBEHIND_VARIANTS` alternatives.
    """
    variants = _variants(node.child)
    if node.positive:
        if len(variants) == 1:
            return f"(?<={variants[0]})"
        return "(?:" + "|".join(f"(?<={v})" for v in variants) + ")"
    return "".join(f"(?<!{v})" for v in variants)
