"""The exception tree.

::

    SelectorsError                      root of everything this library raises
    ├── ConfigError(ValueError)         a configuration is invalid; carries every issue found
    └── NoEndpointError(LookupError)    a pool explicitly configured to reject had no key
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._issues import ConfigIssue
else:

    def __getattr__(name: str) -> Any:
        # ConfigIssue lives in ``_issues``, imported by the first load (or
        # error): importing the package does not create the class.
        if name != "ConfigIssue":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return __import__(__package__ + "._issues", fromlist=(name,)).ConfigIssue


__all__ = ["ConfigError", "ConfigIssue", "NoEndpointError", "SelectorsError"]


class SelectorsError(Exception):
    """Root of every exception selectors_lib raises on purpose."""


class ConfigError(SelectorsError, ValueError):
    """A configuration could not be loaded.

    Every problem found is listed in :attr:`issues`, each with its path, so an
    operator fixes a file in one pass instead of one error per attempt.

    Args:
        issues: The problems found (at least one).
        source: Where the configuration came from (a file name), if known.
    """

    issues: tuple[ConfigIssue, ...]
    source: str | None

    def __init__(self, issues: Iterable[ConfigIssue], source: str | None = None) -> None:
        from ._issues import ConfigIssue

        self.issues = tuple(issues) or (ConfigIssue("", "invalid configuration"),)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.issues) == 1:
            text = f"{head}{self.issues[0]}"
        else:
            lines = "\n".join(f"  {issue}" for issue in self.issues)
            text = f"{head}{len(self.issues)} configuration errors:\n{lines}"
        super().__init__(text)

    @classmethod
    def single(cls, path: str, message: str, source: str | None = None) -> ConfigError:
        """Build an error with one issue."""
        from ._issues import ConfigIssue

        return cls([ConfigIssue(path, message)], source)


class NoEndpointError(SelectorsError, LookupError):
    """No endpoint could be chosen for a request (only raised when configured to)."""
