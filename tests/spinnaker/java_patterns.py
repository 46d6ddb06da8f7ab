"""Deterministic generators of Java patterns and of values to match them against.

Every pattern is built from pieces of ``java.util.regex`` syntax, each paired
with sample strings it may match, so a good share of the values match and the
rest miss by one character, a case, or a line terminator.
"""

from __future__ import annotations

import random

# (pattern piece, samples): samples are strings the piece may match.
ATOMS: list[tuple[str, list[str]]] = [
    ("a", ["a", "A"]),
    ("Z", ["Z", "z"]),
    ("k", ["k", "K", "\u212a"]),
    ("s", ["s", "S", "\u017f"]),
    ("i", ["i", "I", "\u0130", "\u0131"]),
    ("\u00e9", ["\u00e9", "\u00c9"]),
    ("\u03c3", ["\u03c3", "\u03a3", "\u03c2"]),
    ("\u00df", ["\u00df", "\u1e9e", "ss"]),
    ("\u00b5", ["\u00b5", "\u039c", "\u03bc"]),
    ("\u00ff", ["\u00ff", "\u0178"]),
    ("\u00c5", ["\u00c5", "\u00e5", "\u212b"]),
    ("-", ["-"]),
    (".", ["x", "\n", "\r", "\u0085", "\u2028", "\u2029", "\u00e9", "\U0001f600"]),
    ("\\w", ["a", "_", "5", "\u00e9", "\u0394"]),
    ("\\W", ["-", "\u00e9", " "]),
    ("\\d", ["7", "\u0663", "\uff11"]),
    ("\\D", ["a", "\u0663"]),
    ("\\s", [" ", "\t", "\n", "\x0b", "\u00a0", "\u2003", "\u3000"]),
    ("\\S", ["a", "\u00a0"]),
    ("\\h", [" ", "\u00a0", "\u2000", "\t", "\n"]),
    ("\\H", ["a", " "]),
    ("\\v", ["\n", "\x0b", "\u2028", "a"]),
    ("\\V", ["a", "\n"]),
    ("\\R", ["\r\n", "\n", "\r", "\u0085"]),
    ("\\p{Alpha}", ["a", "\u00e9"]),
    ("\\p{Lower}", ["a", "A", "\u00e9"]),
    ("\\p{Upper}", ["A", "a", "\u00c9"]),
    ("\\p{Punct}", ["!", "\u00a1"]),
    ("\\p{XDigit}", ["f", "G"]),
    ("\\p{Space}", [" ", "\u00a0"]),
    ("\\p{javaLowerCase}", ["a", "\u00e9", "A", "\u01c5"]),
    ("\\p{javaUpperCase}", ["A", "\u00c9", "a"]),
    ("\\p{javaWhitespace}", [" ", "\u2003", "\u00a0"]),
    ("\\p{javaLetterOrDigit}", ["a", "\u0663", "_"]),
    ("\\p{IsLatin}", ["a", "\u00e9", "\u0394"]),
    ("\\p{IsGreek}", ["\u0394", "a"]),
    ("\\p{InGreek}", ["\u0394", "\u1f00"]),
    ("\\p{InBasicLatin}", ["a", "\u00e9"]),
    ("\\p{Lu}", ["A", "a", "\u0394", "\u01c5"]),
    ("\\p{Ll}", ["a", "A", "\u03b4"]),
    ("\\p{Lt}", ["\u01c5", "\u01c4"]),
    ("\\p{L}", ["a", "\u4e00", "1"]),
    ("\\pL", ["a", "1"]),
    ("\\PL", ["1", "a"]),
    ("\\p{IsAlphabetic}", ["a", "\u2160"]),
    ("\\p{IsUppercase}", ["A", "a"]),
    ("\\p{sc=Cyrillic}", ["\u0434", "a"]),
    ("\\p{gc=Nd}", ["5", "\u0663"]),
    ("\\p{IsEmoji}", ["\U0001f600"]),
    ("[a-z]", ["m", "M", "\u212a", "\u017f"]),
    ("[A-Z]", ["M", "m", "\u0131"]),
    ("[^a-z]", ["M", "m", "\n"]),
    ("[a-z&&[^aeiou]]", ["b", "a", "B"]),
    ("[\\w&&\\D]", ["a", "5"]),
    ("[a-f[0-3]]", ["c", "2", "9"]),
    ("[\\p{L}&&[^\\p{Lu}]]", ["a", "A"]),
    ("[k\u00e9s]", ["k", "K", "\u212a", "\u00c9", "\u017f"]),
    ("[\u00e0-\u00ff]", ["\u00e9", "\u00c9", "\u0178"]),
    ("[\\u0400-\\u04ff]", ["\u0434", "\u0414"]),
    ("[\\x{1F600}-\\x{1F64F}]", ["\U0001f600", "a"]),
    ("\\Q.*\\E", [".*", "ab"]),
    ("\\Qa\\E", ["a"]),
    ("\\0141", ["a", "\x0c1"]),
    ("\\012", ["\n"]),
    ("\\x41", ["A", "a"]),
    ("\\x{e9}", ["\u00e9", "\u00c9"]),
    ("\\u00e9", ["\u00e9"]),
    ("\\t", ["\t"]),
    ("\\cA", ["\x01"]),
    ("\\e", ["\x1b"]),
    ("\\.", ["."]),
    ("\\-", ["-"]),
    ("]", ["]"]),
    ("}", ["}"]),
]

FLAGS = ["(?i)", "(?u)", "(?iu)", "(?U)", "(?iU)", "(?m)", "(?s)", "(?d)", "(?x)", "(?-i)", "(?im)"]
QUANTIFIERS = ["", "", "", "?", "*", "+", "{2}", "{1,3}", "{0,}", "*?", "++", "?+", "{1,2}+"]
ANCHORS: list[tuple[str, list[str]]] = [
    ("^", [""]),
    ("$", ["", "\n", "\r\n", "\r", "\u2028", "\u0085"]),
    ("\\Z", ["", "\n", "\r\n"]),
    ("\\z", [""]),
    ("\\A", [""]),
]
#: Word boundaries cost Python a large pattern each (see docs/spinnaker.md): fewer of them.
BOUNDARIES: list[tuple[str, list[str]]] = [("\\b", [""]), ("\\B", [""])]
#: Syntax Java refuses that Python (or a careless port) would accept.
REFUSED = [
    "a{",
    "a{,3}",
    "(?P<n>a)(?P=n)",
    "\\0",
    "(?a)x",
    "(?#c)x",
    "\\U00000061",
    "x{1,2",
    "a**",
    "[z-a]",
    "(?<n>a)(?<n>b)",
    "\\k<nope>",
    "\\p{Nope}",
    "\\p{sc=Nope}",
    "[a",
    "(a",
    "a)",
    "\\x{110000}",
    "\\xZ",
    "\\uZZZZ",
    "\\c",
    "[\\b]",
    "(?<1a>x)",
    "*a",
    "\\y",
    "a{2,1}",
    "\\p{}",
    "\\p{L",
    "(?$)",
]
#: Hand-picked corners of Java's grammar, each tried on every EDGE_VALUES item.
EDGE_PATTERNS = [
    r"(?x)[a #b]",
    r"(?x)[a#b\n]c",
    r"\Qab",
    r"[\Q]\E]",
    "a{2}{3}",
    "{2}x",
    r"(?<=a{1,3})b",
    r"x(?<!ab|c)",
    r"(?<n>a)\k<n>",
    r"(a)\10",
    r"(a)\1",
    r"[a-\d]",
    r"[\d-z]",
    "[a&&]",
    "[&&a]",
    "[^]",
    "[]a]",
    r"\x{}",
    r"\cA",
    "(?i)[^a]",
    r"(?i)\p{javaLowerCase}",
    r"(?i)\p{Lu}",
    "(?iu)[k]",
    "(?iu)[a-z]",
    "(?i)[^k]",
    r"(?u)\p{Lower}",
    r"(?iU)\p{Lower}",
    r"(?U)\w",
    r"(?U)\b\w+\b",
    # Only \b{g} is special after \b (JDK 17): other braces repeat the boundary.
    r"a\b{2}b",
    r"a\B{2}",
    r"\b{0}a",
    r"(?x)\b {2} a",
    r"a\b{gx}",
    r"a\b{g",
    r"\B{g}",
    r"\b{}",
    "a||b",
    "(|a)",
    "()",
    "(?:)",
    "a|",
    "|",
    r"\Q\E",
    r"a\Q\E*",
    r"\Qa\E+",
    r"[a-z&&[def]&&[^e]]",
    r"[a[b]&&[c]]",
    r"[ab&&]",
    r"(?<=\Qab\E)c",
    r"\u00e9\u0301",
    r"\uD83D\uDE00",
    r"[\uD83D\uDE00]",
    r"(?d)a$",
    r"(?dm)^a$",
    r"(?m)^$",
    r"(?s).",
    r"\R",
    r"\h+",
    r"(?i)ǅ",
    r"(?iu)ǅ",
    r"(?iu)ß",
    r"(?iu)İ",
    r"(?i)İ",
    r"(?iu)[İ]",
    r"(?iu)[ı]",
    "(?iu)σ",
    "(?iu)[σ]",
    r"(?iu)[\u00e0-\u00ff]",
    "(?i)(a)\\1",
    "(?iu)(ä)\\1",
    r"a++a",
    r"(?>a|ab)b",
    r"\G",
    r"^\A",
    r"(?-m)^a",
    "x*+",
    "x{2,}+",
    "x{,}",
    "x{1,}?",
    r"(?<=^a)b",
    r"(?<!\b)a",
    r"[\w&&\W]",
    r"\p{IsLatin}",
    r"\p{Latin}",
    r"\p{isLatin}",
    r"\p{InLatin-1Supplement}",
    r"\p{InLATIN_1_SUPPLEMENT}",
    r"\p{In Basic Latin}",
    r"\p{InBasic Latin}",
    r"\p{blk=Greek}",
    r"\p{sc=latn}",
    r"\p{script=LATIN}",
    r"\p{gc=L}",
    r"\p{general_category=Lu}",
    r"\p{Gc=Lu}",
    r"\p{IsWhite_Space}",
    r"\p{IsWhiteSpace}",
    r"\p{IsHexDigit}",
    r"\p{Isalphabetic}",
    r"\p{IsL}",
    r"\p{IsLu}",
    r"\p{Islu}",
    r"\p{L1}",
    r"\p{all}",
    r"\P{all}",
    r"\pN",
    r"\p{LC}",
    r"\p{LD}",
    r"\p{IsDigit}",
    r"\p{IsPunct}",
    r"(?U)\p{Punct}",
    r"(?U)\p{Alnum}",
    r"(?U)\p{ASCII}",
    r"\p{ASCII}",
    r"(?U)\p{Blank}",
    r"(?U)\d",
    r"(?U)\s",
    r"\v-\v",
    r"[\v-\v]",
    r"[\n-\r]",
    r"[\x{41}-\x{5a}]",
    "(?x) a b # comment\n c",
    "(?x)a{2 }",
    "(?x)a{ 2}",
    "(?x)a +",
    "(?x)\\ a",
    "(?x)[\\ ]",
    "(?x)(? i)a",
    "(?x)( ?i)a",
]
EDGE_VALUES = [
    "",
    "a",
    "b",
    "ab",
    "aa",
    "aaa",
    "aaaaaa",
    "x",
    "xx",
    "c",
    "bc",
    "abc",
    "ac",
    "A",
    "B",
    "k",
    "K",
    "\u212a",
    "é",
    "É",
    "e\u0301",
    "\U0001f600",
    "\n",
    "a\n",
    "\r\n",
    "ǅ",
    "ǆ",
    "Ǆ",
    "ss",
    "ß",
    "ẞ",
    "i",
    "I",
    "ı",
    "İ",
    "σ",
    "Σ",
    "ς",
    "äÄ",
    "aA",
    "ab c",
    " ",
    "\u00a0",
    "_",
    "5",
    "٣",
    "#",
    "]",
    "[",
    "\\",
    "-",
    "}",
    "{",
    "xxxx",
    "a b c",
    "abc",
]
#: Values that are traps everywhere: case, terminators, long, astral.
POOL = [
    "",
    "a",
    "A",
    "ab",
    "\n",
    "\r\n",
    "a\n",
    "a\r",
    "a\r\n",
    "a\u2028",
    "a\u0085",
    "\u212a",
    "\u0130",
    "\u0131",
    "\u017f",
    "\u03a3",
    "\u03c2",
    "\u00df",
    "SS",
    "\U0001f600",
    "x" * 300,
    "a" * 40 + "!",
    "\u00e9" * 3,
    "_",
    " ",
    "1",
]


def _quantified(rng: random.Random, atom: tuple[str, list[str]]) -> tuple[str, list[str]]:
    piece, samples = atom
    quantifier = rng.choice(QUANTIFIERS)
    if not quantifier:
        return piece, samples
    if (len(piece) > 1 and not piece.startswith(("\\", "["))) or piece.startswith("\\Q"):
        piece = f"(?:{piece})"
    reps = {"?": [0, 1], "*": [0, 1, 3], "+": [1, 2], "{2}": [2], "{1,3}": [1, 3], "{0,}": [0, 2]}
    counts = reps.get(quantifier.rstrip("?+") or quantifier[0], [0, 1, 2])
    out = []
    for count in counts:
        out.append("".join(rng.choice(samples) for _ in range(count)))
    return piece + quantifier, out


def pattern(rng: random.Random) -> tuple[str, list[str]]:
    """One generated pattern and strings built from its pieces' samples."""
    parts: list[tuple[str, list[str]]] = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.1:
            parts.append((rng.choice(FLAGS), [""]))
        elif roll < 0.18:
            parts.append(rng.choice(ANCHORS if roll > 0.105 else BOUNDARIES))
        elif roll < 0.26:
            # Atoms inside a quantified group stay unquantified: nested
            # quantifiers backtrack exponentially on the long values, in both
            # engines (that is the value-length guard's job, not this test's).
            inner = [rng.choice(ATOMS) for _ in range(rng.randint(1, 2))]
            piece = "".join(p for p, _ in inner)
            samples = ["".join(rng.choice(s) for _, s in inner) for _ in range(3)]
            kind = rng.choice(["(", "(?:", "(?>", "(?i:", "(?<g>", "(?-i:"])
            parts.append(_quantified(rng, (kind + piece + ")", samples)))
        elif roll < 0.31:
            a, b = rng.choice(ATOMS), rng.choice(ATOMS)
            parts.append((f"(?:{a[0]}|{b[0]}{b[0]})", a[1] + [s + s for s in b[1]]))
        elif roll < 0.36:
            a, b = rng.choice(ATOMS), rng.choice(ATOMS)
            kind = rng.choice(["(?<=", "(?<!", "(?=", "(?!"])
            look = f"{kind}{a[0]}|{b[0]}{{1,2}})"
            parts.append((look, [""]))
        elif roll < 0.39 and any(p.startswith("(") and not p.startswith("(?") for p, _ in parts):
            parts.append(("\\1", [""]))
        else:
            parts.append(_quantified(rng, rng.choice(ATOMS)))
    text = "".join(p for p, _ in parts)
    values = ["".join(rng.choice(s) for _, s in parts) for _ in range(8)]
    return text, values


def pairs(seed: int, count: int) -> list[tuple[str, str]]:
    """``count`` (pattern, value) pairs, the same for every run with ``seed``."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for refused in REFUSED:
        out.extend((refused, v) for v in ("a", "aa", ""))
    out.extend((p, v) for p in EDGE_PATTERNS for v in EDGE_VALUES)
    while len(out) < count:
        text, built = pattern(rng)
        values = [*built, *rng.sample(POOL, 6)]
        for value in built[:4]:
            if value:
                # One character off: a case flip, a terminator, a cut.
                i = rng.randrange(len(value))
                values.append(value[:i] + value[i].swapcase() + value[i + 1 :])
                values.append(value + rng.choice(["\n", "\r\n", "\r", "\u2028", "x"]))
                values.append(value[:i])
        unbounded = sum(text.count(q) for q in ("*", "+", ",}"))
        if unbounded <= 1:
            values.append(rng.choice(built) * 50)
        else:
            # Several unbounded quantifiers cost polynomial time in the value's
            # length when the match fails: keep these values short.
            values = [v if len(v) <= 40 else v[:40] for v in values]
        out.extend((text, v) for v in values)
    return out[:count]
