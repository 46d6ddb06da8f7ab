"""A griffe extension: Sphinx roles in docstrings become API reference links.

The docstrings cross-reference with Sphinx roles (``:class:`Decision```), which
Markdown shows as stray text. This rewrites each role into an optional
mkdocs-autorefs link: it resolves against the public module first (where the
reference page documents the object), then the defining module, then the
enclosing class; a name that resolves nowhere stays plain code, so a role can
never break the strict build.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|data|attr|exc|mod|obj|const):`~?\.?([\w.]+)`")


def _public(path: str) -> str:
    """``selectors_lib.health._state`` -> ``selectors_lib.health``."""
    return ".".join(part for part in path.split(".") if not part.startswith("_"))


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles into optional autorefs links once the tree is complete."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is None or ":" not in obj.docstring.value:
            return
        collection = loader.modules_collection
        module = obj.module.path
        scopes = [_public(module), module]
        if obj.parent is not None and obj.parent.is_class:
            scopes.append(obj.parent.path)
        if obj.is_class:
            scopes.append(obj.path)

        def link(match: re.Match[str]) -> str:
            name = match.group(1)
            title = f"<code>{name.rsplit('.', 1)[-1] if '~' in match.group(0) else name}</code>"
            candidates = [name] if name.startswith("selectors_lib") else []
            candidates += [f"{scope}.{name}" for scope in scopes]
            for path in candidates:
                try:
                    collection[path]
                except (KeyError, ValueError, griffe.AliasResolutionError):
                    continue
                return f'<autoref identifier="{path}" optional>{title}</autoref>'
            return title

        obj.docstring.value = ROLE.sub(link, obj.docstring.value)
