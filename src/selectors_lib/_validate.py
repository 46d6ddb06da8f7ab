"""Validation primitives shared by every configuration section.

The native loader (``_config.py``), the ``health:`` section
(``health/_settings.py``) and the Spinnaker readers (``spinnaker/_spring.py``)
all report problems the same way: a :class:`ConfigIssue` per problem, with a
JSON-style path (``routes[2].target.endpoints[0]``), every problem of a document
at once. This module holds what they share, so that a message reads the same
whichever section it comes from and hostile values are handled in one place.

Values in a configuration are untrusted: a YAML alias bomb is a few dozen
objects in memory but billions of leaves when walked, and an integer of 5000
digits cannot be turned into a ``str`` or a ``float``. Nothing here walks a
value whole or converts it unchecked: messages show values with :func:`show`
(a bounded repr), numbers are compared as they are, never through ``float()``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import reprlib
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import ConfigIssue

__all__ = [
    "INT32",
    "MAX_URL_LENGTH",
    "Checker",
    "join",
    "key_text",
    "kind",
    "oversized_key",
    "show",
    "text_problem",
    "url_problem",
]

#: The range of a Java ``int``: rule priorities share Spinnaker's.
INT32 = (-(2**31), 2**31 - 1)
#: The longest URL any section accepts.
MAX_URL_LENGTH = 2048
_MAX_PORT = 65535

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_HOST_PORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*:[0-9]{1,5}(/\S*)?")
# The shape nearly every configured URL has (scheme://host[:port][/path], plain
# ASCII): urlsplit accepts it with these very parts, so it is checked without
# parsing. Anything else, and any verdict but "usable", takes the full path.
_PLAIN_URL = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*)://[A-Za-z0-9\-._~]+(?::([0-9]{1,5}))?(?:/[A-Za-z0-9\-._~/%]*)?"
)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_KINDS: Mapping[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


class _ShortRepr(reprlib.Repr):
    """``reprlib`` that also survives integers too long for ``str()``."""

    def repr_int(self, x: int, level: int) -> str:
        # str() of an int over 4300 digits raises ValueError (and is quadratic
        # below that); its size says enough.
        if x.bit_length() > 256:
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 40, 40


def show(value: object) -> str:
    """A short repr of an untrusted value, bounded in time and size.

    ``f"{value!r:.40}"`` builds the whole repr first: exponential for a YAML
    alias bomb, and a ValueError for an integer over 4300 digits. This shows at
    most two levels of nesting and 40 characters of a string.

    Args:
        value: Any parsed configuration value.

    Returns:
        A repr for messages, e.g. ``'abc'``, ``[[[...], ...]]`` or
        ``<an integer of 16610 bits>``.
    """
    return _SHORT.repr(value)


def kind(value: object) -> str:
    """Name the kind of a parsed value for messages (``a string``, ``a list``).

    Args:
        value: Any parsed configuration value.

    Returns:
        The YAML/JSON name of its kind with an article, ``nothing (null)`` for
        None, or the Python type name for anything else (``datetime``).
    """
    if value is None:
        return "nothing (null)"
    return _KINDS.get(type(value), type(value).__name__)


#: Integer keys wider than this many bits are refused: ``str()`` of one over 4300
#: digits raises, and below that it costs quadratic time.
_KEY_BITS = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def oversized_key(key: object) -> bool:
    """Whether ``key`` is an integer too large to name anything (``? 0xfff...``).

    Args:
        key: A mapping key from a parsed document.

    Returns:
        True for an integer (not a boolean) wider than 64 bits.
    """
    return isinstance(key, int) and not isinstance(key, bool) and key.bit_length() > _KEY_BITS


def key_text(key: object) -> str:
    """A mapping key as path text: ``str(key)``, bounded for any key.

    Args:
        key: A mapping key from a parsed document (any type).

    Returns:
        The key's text; for an oversized integer or an unprintable value, a
        short description such as ``<an integer of 16000 bits>``.
    """
    if isinstance(key, str):
        return key
    if oversized_key(key) or not isinstance(key, int | float | bool | None):
        return show(key)
    return str(key)


def text_problem(value: str) -> str | None:
    """What makes a string unfit for a name, id or URL, or None.

    A lone surrogate (JSON ``"\\ud800"``) is a valid Python string that no
    encoder accepts: once it is an endpoint id or a rule name, every response
    header and metrics scrape carrying it raises ``UnicodeEncodeError``.

    Args:
        value: The text.

    Returns:
        A message naming the position of the first lone surrogate, or None.
    """
    found = _SURROGATE.search(value)
    if found is None:
        return None
    return (
        f"contains a lone surrogate (U+{ord(found.group()):04X} at {found.start()}), not valid text"
    )


def join(path: str, key: str) -> str:
    """The path of ``key`` inside the mapping at ``path``.

    Args:
        path: The mapping's path; empty for the document itself.
        key: A mapping key.

    Returns:
        ``path.key``, with the key JSON-quoted unless it is a plain name
        (``endpoints."a b"``), so every path parses back unambiguously.
    """
    safe = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
    return f"{path}.{safe}" if path else safe


def url_problem(url: str, schemes: Sequence[str] | None = None) -> str | None:
    """What is wrong with a URL, or None.

    Args:
        url: The URL text.
        schemes: The schemes allowed (lowercase, without ``://``); None allows
            any well-formed scheme.

    Returns:
        A message such as ``missing host``, or None when the URL is usable: it
        has a scheme (one of ``schemes``), a host (a socket path for
        ``unix://`` when ``schemes`` allows it), a valid port if any, and no
        white space.
    """
    if not url:
        return "must not be empty"
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    # A load of 10k rules validates 30k URLs: urlsplit was a fifth of it.
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:
        scheme, port = plain.group(1, 2)
        if (port is None or int(port) <= _MAX_PORT) and (
            schemes is None or (scheme.lower() in schemes and scheme.lower() != "unix")
        ):
            return None
    return _parsed_url_problem(url, schemes)


def _parsed_url_problem(url: str, schemes: Sequence[str] | None) -> str | None:
    # url_problem past its fast path (also its oracle in the tests): non-empty,
    # at most MAX_URL_LENGTH characters.
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        return str(exc)
    scheme = parts.scheme.lower()
    if "//" not in url and _HOST_PORT.fullmatch(url):
        # urlsplit reads "ro-2.internal:7002" as scheme "ro-2.internal": say what was meant.
        example = (schemes or ("http",))[0]
        return f"missing scheme: write {example}://{url}"
    if schemes is None:
        if not _SCHEME.fullmatch(scheme):
            return "missing scheme (e.g. https://)"
    elif scheme not in schemes:
        return f"expected a {' or '.join(s + '://' for s in schemes)} URL"
    if schemes is not None and scheme == "unix":  # only where asked for: no host
        if not parts.path:
            return "missing socket path"
    elif not parts.hostname:
        return "missing host"
    if url.split() != [url]:  # split() cuts at exactly the chars isspace() accepts
        return "contains white space"
    return text_problem(url)


class _NothingNew:
    """:meth:`Checker.nothing_new`'s context manager.

    A class rather than ``@contextmanager``: a load enters two per rule, and a
    generator-based one costs a generator, its frame and a wrapper each time.
    """

    __slots__ = ("_before", "_issues", "cell")

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self._issues = issues
        self._before = len(issues)
        self.cell = [False]

    def __enter__(self) -> list[bool]:
        return self.cell

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # Left False when the block raised, as the generator version did.
        if exc_type is None:
            self.cell[0] = len(self._issues) == self._before


class Checker:
    """Collects issues and warnings as validation walks a document.

    Each check returns the value it validated, or None after recording an
    issue at the path it was given, so a caller goes on and reports every
    problem at once.
    """

    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def error(self, path: str, message: str) -> None:
        """Record a problem at ``path``."""
        self.issues.append(ConfigIssue(path, message))

    def warn(self, path: str, message: str) -> None:
        """Record a warning at ``path`` (the configuration still loads)."""
        self.warnings.append(ConfigIssue(path, message))

    def nothing_new(self) -> _NothingNew:
        """Yield a flag cell, set to True on exit when the block added no issue."""
        return _NothingNew(self.issues)

    def unique_name(
        self, seen: dict[str, int], name: str, where: str, index: int, what: str
    ) -> None:
        """Report item ``index`` of the list at ``where`` if an earlier item has its name.

        Args:
            seen: Names seen so far in the list, each with its first index;
                ``name`` is added.
            name: The item's name.
            where: The list's path (``routes``, ``health.probes``).
            index: The item's index.
            what: What the items are, for the message (``rule``, ``probe``).
        """
        if name in seen:
            label = where.rpartition(".")[2]
            self.error(
                f"{where}[{index}].name",
                f"duplicate {what} name {name!r} (also {label}[{seen[name]}])",
            )
        seen.setdefault(name, index)

    def mapping(self, value: object, path: str, allowed: Sequence[str]) -> Mapping[str, Any] | None:
        """Check ``value`` is a mapping with string keys among ``allowed``.

        Returns:
            The mapping; with unknown or non-string keys reported and left out.
            None (reported) when it is not a mapping.
        """
        if not isinstance(value, Mapping):
            self.error(path, f"expected a mapping, got {kind(value)}")
            return None
        good = True
        for key in value:
            if not isinstance(key, str):
                self.error(path, f"keys must be strings, got {kind(key)} {show(key)}")
                good = False
            elif key not in allowed:
                near = difflib.get_close_matches(key[:100], allowed, n=1, cutoff=0.8)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                self.error(
                    join(path, key), f"unknown key; expected one of {', '.join(allowed)}{hint}"
                )
                good = False
        return value if good else {k: v for k, v in value.items() if k in allowed}

    def nonempty_list(self, value: object, path: str, what: str = "a list") -> list[Any] | None:
        """Check ``value`` is a non-empty list (``what`` names it in the message)."""
        if not isinstance(value, list):
            self.error(path, f"expected {what}, got {kind(value)}")
            return None
        if not value:
            self.error(path, "must not be empty")
            return None
        return value

    def string(self, value: object, path: str, *, max_len: int = 1024) -> str | None:
        """Check ``value`` is a non-empty string of at most ``max_len`` characters."""
        if not isinstance(value, str):
            self.error(path, f"expected a string, got {kind(value)}")
            return None
        if not value:
            self.error(path, "must not be empty")
            return None
        if len(value) > max_len:
            self.error(path, f"longer than {max_len} characters")
            return None
        problem = text_problem(value)
        if problem is not None:
            self.error(path, problem)
            return None
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...] | None:
        """Check ``value`` is a string or a non-empty list of strings.

        Returns:
            The strings (one for a lone string); None when any item is wrong,
            each wrong item reported at its index.
        """
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list | tuple):
            self.error(path, f"expected a string or a list of strings, got {kind(value)}")
            return None
        if not value:
            self.error(path, "must not be an empty list")
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.error(f"{path}[{i}]", f"expected a string, got {kind(item)}")
        return tuple(out) if len(out) == len(value) else None

    def one_of(self, value: object, path: str, choices: Sequence[str]) -> str | None:
        """Check ``value`` is one of the strings ``choices``."""
        # isinstance first: ``in`` would compare a huge structure with each choice.
        if not isinstance(value, str) or value not in choices:
            self.error(path, f"expected one of {', '.join(choices)}, got {show(value)}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        """Check ``value`` is true or false (no other spelling)."""
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {kind(value)}")
            return None
        return value

    def integer(self, value: object, path: str, low: int, high: int) -> int | None:
        """Check ``value`` is an integer (not a boolean) from ``low`` to ``high``."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected an integer, got {kind(value)}")
            return None
        if not low <= value <= high:
            self.error(path, f"must be between {low} and {high}, got {show(value)}")
            return None
        return value

    def number(
        self,
        value: object,
        path: str,
        low: float,
        high: float,
        *,
        exclusive_low: bool = False,
        what: str = "a number",
    ) -> float | None:
        """Check ``value`` is a finite number (integer or float) in a range.

        Args:
            value: The value.
            path: Its path.
            low: The lowest value allowed (excluded with ``exclusive_low``).
            high: The highest value allowed.
            exclusive_low: ``low`` itself is not allowed (a duration of 0).
            what: Names the expected value (``a number of seconds``).

        Returns:
            The value as a float, or None after reporting it.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, f"expected {what}, got {kind(value)}")
            return None
        # Compared as given: int/float comparison is exact, while float() of a
        # huge integer raises OverflowError. NaN fails every comparison.
        above = low < value if exclusive_low else low <= value
        if not (above and value <= high) or (isinstance(value, float) and not math.isfinite(value)):
            bound = "more than" if exclusive_low else "at least"
            self.error(path, f"must be {bound} {low:g} and at most {high:g}, got {show(value)}")
            return None
        return float(value)

    def url(self, value: object, path: str, schemes: Sequence[str] | None = None) -> str | None:
        """Check ``value`` is a usable URL (see :func:`url_problem`)."""
        if not isinstance(value, str):
            self.error(path, f"expected a URL, got {kind(value)}")
            return None
        problem = url_problem(value, schemes)
        if problem is None:
            return value
        if not value or len(value) > MAX_URL_LENGTH:
            self.error(path, problem)  # nothing worth quoting
        else:
            self.error(path, f"invalid URL {value!r:.80}: {problem}")
        return None
