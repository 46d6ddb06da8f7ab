"""Reading a configuration file safely: bounded size, regular files only, no duplicate keys.

A configuration path is operator input, and so is the file: it may point at
``/dev/zero`` (endless), a FIFO (blocks forever), or a file far larger than any
configuration. It is opened without blocking, refused unless it is a regular
file, and read up to :data:`MAX_SOURCE_BYTES`.

JSON and YAML silently keep the *last* of two equal keys, so
``{"a": "http://a", "a": "http://evil"}`` would load as evil; TOML refuses
them. Here a duplicate key is an error in every format, naming both positions.
The YAML check is a loader mix-in (:func:`unique_keys_loader`) that works over
PyYAML's pure ``SafeLoader`` and its libyaml ``CSafeLoader`` alike.
"""

from __future__ import annotations

import functools
import json
import json.decoder
import json.scanner
import os
import stat
from collections.abc import Callable
from typing import Any

from ._validate import show

__all__ = ["MAX_SOURCE_BYTES", "DuplicateKeyError", "load_json", "load_yaml", "read_limited"]

#: The largest configuration file read, in bytes (a large routing table with
#: thousands of rules is a few MB).
MAX_SOURCE_BYTES = 32 * 1024 * 1024


class DuplicateKeyError(ValueError):
    """A mapping gives the same key twice (the message names both positions)."""


def read_limited(name: str, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The content of the regular file ``name``, at most ``limit`` bytes.

    Args:
        name: The file's path.
        limit: The largest size accepted.

    Returns:
        The bytes.

    Raises:
        OSError: It cannot be opened or read.
        ValueError: It is not a regular file, or larger than ``limit`` (the
            message says which).
    """
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(name, flags)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise ValueError(f"larger than {limit:,} bytes ({info.st_size:,})")
        # Read one byte more than allowed: a file that grows while read is caught too.
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit:,} bytes")
    return data


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


# -- JSON ------------------------------------------------------------------------------


_PY_MAKE_SCANNER: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009 - untyped
_JSON_OBJECT: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 - untyped


class _Duplicate(Exception):
    """Raised by the fast pass; the slow pass finds the positions."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Duplicate
    return result


def load_json(text: str) -> object:
    """Parse JSON text, refusing duplicate keys.

    Raises:
        DuplicateKeyError: A key appears twice in one object (both positions named).
        ValueError: A syntax error (``json.JSONDecodeError``).
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _Duplicate:
        pass
    # Rare: parse again with the pure-Python scanner, which can say where.
    # The scanner's hooks are undocumented attributes, hence Any.
    decoder: Any = json.JSONDecoder()
    decoder.parse_object = functools.partial(_positioned_object, text)
    decoder.scan_once = _PY_MAKE_SCANNER(decoder)
    decoder.decode(text)
    raise DuplicateKeyError("duplicate key")  # unreachable: the slow pass raises


def _positioned_object(
    text: str,
    s_and_end: tuple[str, int],
    strict: bool,
    scan_once: Callable[[str, int], tuple[Any, int]],
    object_hook: Any,
    object_pairs_hook: Any,
    memo: dict[str, str] | None = None,
) -> tuple[Any, int]:
    """``json.decoder.JSONObject`` that knows where each value starts."""
    starts: list[int] = []

    def scan(string: str, idx: int) -> tuple[Any, int]:
        starts.append(idx)
        return scan_once(string, idx)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for (key, _), start in zip(items, starts, strict=True):
            if key in seen:
                raise DuplicateKeyError(
                    f"duplicate key {show(key)}: its value at {_where(text, start)}, "
                    f"first given at {_where(text, seen[key])}"
                )
            seen[key] = start
        return dict(items)

    result: tuple[Any, int] = _JSON_OBJECT(s_and_end, strict, scan, object_hook, pairs, memo)
    return result


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


# -- YAML ------------------------------------------------------------------------------


@functools.cache
def unique_keys_loader(base: type[Any]) -> type[Any]:
    """A subclass of the PyYAML loader ``base`` that refuses duplicate mapping keys.

    Works over ``yaml.SafeLoader`` and ``yaml.CSafeLoader`` alike (with either,
    mappings are built by the Python ``SafeConstructor``). Merge keys (``<<``)
    may still be overridden by the mapping's own keys, as YAML intends.

    Args:
        base: The loader class to extend.

    Returns:
        The loader class (one per base, cached).
    """
    import yaml

    merge_tag = "tag:yaml.org,2002:merge"

    class UniqueKeysLoader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == merge_tag:
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        first = seen.setdefault(key, key_node.start_mark)
                    except TypeError:
                        continue  # unhashable: the base constructor reports it
                    if first is not key_node.start_mark:
                        raise DuplicateKeyError(
                            f"duplicate key {show(key)} at {_mark(key_node.start_mark)}, "
                            f"first given at {_mark(first)}"
                        )
            return super().construct_mapping(node, deep=deep)

    UniqueKeysLoader.__name__ = UniqueKeysLoader.__qualname__ = f"UniqueKeys{base.__name__}"
    return UniqueKeysLoader


def _mark(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def load_yaml(text: str) -> object:
    """Parse YAML text with the safe loader (libyaml's when installed), refusing duplicate keys.

    Raises:
        ImportError: PyYAML is not installed (names the extra).
        DuplicateKeyError: A key appears twice in one mapping (both positions named).
        ValueError: A syntax error, with PyYAML's pointer to the spot.
    """
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "YAML configuration needs PyYAML: pip install 'selectors-lib[yaml]'"
        ) from None
    fast = getattr(yaml, "CSafeLoader", None)
    loader = unique_keys_loader(fast or yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        error: yaml.YAMLError = exc
    if fast is not None:
        # libyaml's marks carry no snippet: parse again in Python for the pointer line.
        try:
            yaml.load(text, Loader=unique_keys_loader(yaml.SafeLoader))
        except yaml.YAMLError as exc:
            error = exc
    # Keep the lines: the snippet and its ^ pointer only make sense one above the other.
    raise ValueError(str(error).replace('in "<unicode string>", ', "")) from None
