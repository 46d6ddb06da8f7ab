"""One problem found in a configuration: :class:`ConfigIssue`.

Apart from the exception tree (``_errors``): only a load builds issues, and the
loader is imported on first use, so importing the package does not create the
class (see docs/scale.md, "Import cost").
"""

from __future__ import annotations

import attrs

__all__ = ["ConfigIssue"]


@attrs.frozen
class ConfigIssue:
    """One problem found in a configuration.

    Args:
        path: JSON-style location of the problem, e.g. ``routes[2].match.application``.
        message: What is wrong there.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message
