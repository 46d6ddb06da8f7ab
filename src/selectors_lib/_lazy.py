"""Module attributes imported on first use (PEP 562), for the package and its subpackages."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    module: str, table: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` that import ``table``'s names on first use.

    Args:
        module: The module's ``__name__``.
        table: Each lazy name and the submodule that defines it, relative
            (``"._jump"``).
        namespace: The module's ``globals()``: a name, once imported, is
            stored there, so later lookups no longer reach ``__getattr__``.

    Returns:
        ``(__getattr__, __dir__)`` for the module to bind.
    """

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        # __import__ with a fromlist returns the submodule itself; importlib
        # would be one more module to import with the package.
        value = getattr(__import__(module + where, fromlist=(name,)), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__
