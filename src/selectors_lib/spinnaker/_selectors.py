"""Spinnaker's v1 service selectors: class names, config keys and ``supports()``.

Each selector reproduces its Java class exactly (see ``docs/spinnaker.md``):
application and account are lowercased and then *fully* matched by a pattern
that is not lowercased; origins compare like ``String.equalsIgnoreCase`` (Gate's
``ByUserOriginSelector`` exactly); every list is exact, case-sensitive
membership. One deliberate guard: like the native router, a value longer than
:data:`MAX_VALUE_LENGTH` characters never reaches a pattern.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from selectors_lib._criteria import Criteria
from selectors_lib._errors import ConfigIssue
from selectors_lib._javaregex import compile_java, equals_ignore_case, to_lower_root, translate
from selectors_lib._regex import Pattern, nested_quantifier
from selectors_lib._validate import key_text, show

from ._spring import Issues, as_strings, as_values, describe, key_issue, nearest

__all__ = [
    "DEFAULT_SELECTOR",
    "GATE_PACKAGE",
    "KORK_PACKAGE",
    "LEGACY_ORCA_PACKAGE",
    "MAX_VALUE_LENGTH",
    "ORIGIN_EXECUTION_TYPES",
    "SELECTOR_CLASSES",
    "Selector",
    "check_pattern",
    "parse_selector",
    "resolve_selector_class",
]

KORK_PACKAGE = "com.netflix.spinnaker.kork.web.selector."
#: Where the selectors lived before they moved to kork in 2019.
LEGACY_ORCA_PACKAGE = "com.netflix.spinnaker.orca.clouddriver.config."
GATE_PACKAGE = "com.netflix.spinnaker.gate.services.internal."
DEFAULT_SELECTOR = "DefaultServiceSelector"
_USER_ORIGIN = "ByUserOriginSelector"

#: Simple class name -> the criteria field it reads (None: reads nothing).
SELECTOR_CLASSES: Mapping[str, str | None] = {
    DEFAULT_SELECTOR: None,
    "ByApplicationServiceSelector": "application",
    "ByAccountServiceSelector": "account",
    "ByExecutionTypeServiceSelector": "execution_type",
    "ByOriginServiceSelector": "origin",
    "ByAuthenticatedUserServiceSelector": "authenticated_user",
    "ByLocationServiceSelector": "location",
    "ByCloudProviderServiceSelector": "cloud_provider",
    _USER_ORIGIN: "origin",
}

#: Request values longer than this never reach a pattern (the native default too).
MAX_VALUE_LENGTH = 4096

# selector -> (required key, kind): "pattern" is one regex, "patterns" a list of
# regexes, "values" a list of exact strings.
_REQUIRED: Mapping[str, tuple[str, str]] = {
    "ByApplicationServiceSelector": ("applicationPattern", "pattern"),
    "ByAccountServiceSelector": ("accountPattern", "pattern"),
    "ByExecutionTypeServiceSelector": ("executionTypes", "values"),
    "ByAuthenticatedUserServiceSelector": ("users", "patterns"),
    "ByLocationServiceSelector": ("locations", "values"),
    "ByCloudProviderServiceSelector": ("cloudProviders", "values"),
}
_VALUE_SELECTORS = frozenset(
    {
        "ByExecutionTypeServiceSelector",
        "ByLocationServiceSelector",
        "ByCloudProviderServiceSelector",
        "ByOriginServiceSelector",
    }
)
#: ByOriginServiceSelector's execution types when ``executionTypes`` is not set.
ORIGIN_EXECUTION_TYPES: tuple[str, ...] = ("pipeline", "orchestration")
_KNOWN_KEYS: Mapping[str, frozenset[str]] = {
    **{name: frozenset({"selectorClass", key}) for name, (key, _) in _REQUIRED.items()},
    DEFAULT_SELECTOR: frozenset({"selectorClass"}),
    "ByOriginServiceSelector": frozenset({"selectorClass", "origin", "executionTypes"}),
    _USER_ORIGIN: frozenset({"selectorClass", "origin"}),
}


def resolve_selector_class(name: str) -> str | None:
    """Map any spelling of a selector class to its simple name.

    Accepts ``com.netflix.spinnaker.kork.web.selector.X``, the pre-2019
    ``com.netflix.spinnaker.orca.clouddriver.config.X``, Gate's
    ``com.netflix.spinnaker.gate.services.internal.ByUserOriginSelector`` and the
    simple name ``X``.

    Returns:
        The simple class name, or ``None`` for an unknown class.
    """
    if name in SELECTOR_CLASSES:
        return name
    for package in (KORK_PACKAGE, LEGACY_ORCA_PACKAGE):
        if name.startswith(package):
            simple = name[len(package) :]
            return simple if simple in SELECTOR_CLASSES and simple != _USER_ORIGIN else None
    if name == GATE_PACKAGE + _USER_ORIGIN:
        return _USER_ORIGIN
    return None


def _compile(pattern: str) -> Pattern:
    # Java's dialect, exactly (a JavaPatternError is a ValueError).
    return compile_java(pattern)


@attrs.frozen
class Selector:
    """One v1 selector, built from one ``baseUrls`` entry.

    Args:
        index: The entry's position in the list (0-based).
        base_url: The entry's ``baseUrl``: what the selector selects.
        priority: The entry's ``priority`` (higher wins).
        selector_class: The simple Java class name (``ByApplicationServiceSelector``).
        patterns: ``applicationPattern``/``accountPattern`` (one) or ``users`` (any).
        values: ``executionTypes``, ``locations`` or ``cloudProviders``
            (ByOrigin: its execution types, defaulted).
        origin: ``origin`` of ByOrigin/ByUserOrigin (``None``: never matches).
        where: Where the entry sits in its file (``clouddriver.readonly.baseUrls[2]``),
            for descriptions; not part of equality.
    """

    index: int
    base_url: str
    priority: int
    selector_class: str = DEFAULT_SELECTOR
    patterns: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    origin: str | None = None
    where: str = attrs.field(default="", eq=False)
    _compiled: tuple[Pattern, ...] = attrs.field(init=False, eq=False, repr=False)
    _value_set: frozenset[str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Patterns are validated by parse_selector; building one directly with a
        # bad pattern raises ValueError here.
        object.__setattr__(self, "_compiled", tuple(_compile(p) for p in self.patterns))
        # Membership only: a set never decides an order here.
        object.__setattr__(self, "_value_set", frozenset(self.values))

    @property
    def location(self) -> str:
        """Where the entry sits (``baseUrls[2]`` when not known better)."""
        return self.where or f"baseUrls[{self.index}]"

    @property
    def field(self) -> str | None:
        """The criteria field this selector reads (``None`` for the default selector)."""
        return SELECTOR_CLASSES[self.selector_class]

    @property
    def can_match(self) -> bool:
        """False for a selector no request can satisfy.

        An origin selector without origin, or a list selector none of whose
        items is a string (Java loads ``locations: [true]``; it never matches).
        """
        if not self.values and self.selector_class in _VALUE_SELECTORS:
            return False
        return self.origin is not None or self.selector_class not in (
            "ByOriginServiceSelector",
            _USER_ORIGIN,
        )

    def supports(self, criteria: Criteria) -> bool:
        """Whether this selector accepts ``criteria`` (Java's ``supports``)."""
        name = self.selector_class
        if name == DEFAULT_SELECTOR:
            return True
        if name == "ByApplicationServiceSelector":
            return self._lowered_match(criteria.application)
        if name == "ByAccountServiceSelector":
            return self._lowered_match(criteria.account)
        if name == "ByExecutionTypeServiceSelector":
            return criteria.execution_type in self._value_set
        if name == "ByOriginServiceSelector":
            return (
                self.origin is not None
                and criteria.origin is not None
                and equals_ignore_case(self.origin, criteria.origin)
                and criteria.execution_type in self._value_set
            )
        if name == "ByAuthenticatedUserServiceSelector":
            user = criteria.authenticated_user
            if user is None or len(user) > MAX_VALUE_LENGTH:
                return False
            return any(p.fullmatch(user) is not None for p in self._compiled)
        if name == "ByLocationServiceSelector":
            return criteria.location in self._value_set
        if name == "ByCloudProviderServiceSelector":
            return criteria.cloud_provider in self._value_set
        # ByUserOriginSelector: String.equals, case-sensitive.
        return self.origin is not None and self.origin == criteria.origin

    def _lowered_match(self, value: str | None) -> bool:
        if value is None:
            return False
        # The length guard looks at the value as received, before lower() can
        # lengthen it ("\u0130" lowercases to two characters): exactly where the
        # native FieldMatch checks, so a converted router cuts off the same values.
        if len(value) > MAX_VALUE_LENGTH:
            return False
        # Java: value.toLowerCase() then Pattern.matches(pattern, value); the
        # pattern itself is not lowercased.
        return self._compiled[0].fullmatch(to_lower_root(value)) is not None

    def describe(self) -> str:
        """A short human description, e.g. ``ByApplication 'big.*' (value lowercased)``."""
        short = self.selector_class.removesuffix("ServiceSelector").removesuffix("Selector")
        name = self.selector_class
        if name == DEFAULT_SELECTOR:
            return "Default: matches every request"
        if name in ("ByApplicationServiceSelector", "ByAccountServiceSelector"):
            return f"{short}: {self.field} lowercased, fully matched by {self.patterns[0]!r}"
        if name == "ByAuthenticatedUserServiceSelector":
            return f"{short}: authenticated_user fully matched by any of {list(self.patterns)!r}"
        if name == "ByOriginServiceSelector":
            return (
                f"{short}: origin equals {self.origin!r} ignoring case and execution_type "
                f"in {list(self.values)!r}"
            )
        if name == _USER_ORIGIN:
            return f"{short}: origin equals {self.origin!r} (case-sensitive)"
        return f"{short}: {self.field} in {list(self.values)!r}"


def parse_selector(
    index: int,
    base_url: str,
    priority: int,
    config: object,
    *,
    path: str,
    issues: Issues,
    warnings: Issues,
) -> Selector | None:
    """Build the selector of one entry from its ``config`` mapping.

    Args:
        index: The entry's position.
        base_url: Its (already checked) ``baseUrl``.
        priority: Its (already checked) priority.
        config: The entry's ``config`` (``None``: a default selector).
        path: The config's path for messages, e.g. ``baseUrls[2].config``.
        issues: Errors are appended here.
        warnings: Problems that do not stop loading are appended here.

    Returns:
        The selector, or ``None`` after recording issues.
    """
    where = f"entry {index} ({base_url}): "
    if config is None:
        return Selector(index, base_url, priority)
    if not isinstance(config, Mapping):
        issues.append(ConfigIssue(path, f"{where}expected a mapping, got {describe(config)}"))
        return None
    raw_class = config.get("selectorClass")
    if raw_class is None:
        name = DEFAULT_SELECTOR
    elif not isinstance(raw_class, str):
        issues.append(
            ConfigIssue(
                f"{path}.selectorClass",
                f"{where}expected a class name string, got {describe(raw_class)}",
            )
        )
        return None
    else:
        resolved = resolve_selector_class(raw_class)
        if resolved is None:
            issues.append(
                ConfigIssue(
                    f"{path}.selectorClass",
                    f"{where}unknown selector class {raw_class!r:.120}; expected one of "
                    + ", ".join(SELECTOR_CLASSES)
                    + f" (simple name, or under {KORK_PACKAGE} / {LEGACY_ORCA_PACKAGE};"
                    f" ByUserOriginSelector under {GATE_PACKAGE})",
                )
            )
            return None
        name = resolved
    misspelled: dict[str, object] = {}  # known key -> the unknown key that misspells it
    for key in config:
        if key not in _KNOWN_KEYS[name] and not key_issue(key, path, where, issues):
            hint = nearest(key, _KNOWN_KEYS[name])
            if hint is not None:
                misspelled.setdefault(hint, key)
            warnings.append(
                ConfigIssue(
                    f"{path}.{key_text(key)}",
                    f"{where}{name} ignores the key {show(key)}"
                    + (f"; did you mean {hint!r}?" if hint else ""),
                )
            )
    before = len(issues)
    patterns: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    origin: str | None = None
    if name in _REQUIRED:
        key, kind = _REQUIRED[name]
        key_path = f"{path}.{key}"
        if config.get(key) is None:
            typo = misspelled.get(key)
            if typo is not None:
                # Name the key that was meant, where it was written.
                issues.append(
                    ConfigIssue(
                        f"{path}.{key_text(typo)}",
                        f"{where}unknown key {show(typo)} for {name}; did you mean {key!r}? "
                        f"(the required key {key!r} is missing)",
                    )
                )
                return None
            issues.append(ConfigIssue(key_path, f"{where}missing required key {key!r} for {name}"))
            return None
        raw = config[key]
        if kind == "pattern":
            if not isinstance(raw, str):
                issues.append(
                    ConfigIssue(key_path, f"{where}expected a regex string, got {describe(raw)}")
                )
                return None
            patterns = (raw,)
            _check_patterns(
                patterns, key_path, where, single=True, issues=issues, warnings=warnings
            )
        elif kind == "patterns":
            items = as_strings(raw, key_path, where, issues, free_form=True)
            if items is None:
                return None
            patterns = items
            _check_patterns(
                patterns, key_path, where, single=False, issues=issues, warnings=warnings
            )
        else:
            found = as_values(raw, key_path, where, issues, warnings, free_form=True)
            if found is None:
                return None
            values = found
    elif name in ("ByOriginServiceSelector", _USER_ORIGIN):
        raw_origin = config.get("origin")
        if raw_origin is None:
            warnings.append(
                ConfigIssue(f"{path}.origin", f"{where}{name} without 'origin' never matches")
            )
        elif not isinstance(raw_origin, str):
            issues.append(
                ConfigIssue(
                    f"{path}.origin", f"{where}expected a string, got {describe(raw_origin)}"
                )
            )
            return None
        else:
            origin = raw_origin
        if name == "ByOriginServiceSelector":
            values = ORIGIN_EXECUTION_TYPES
            if config.get("executionTypes") is not None:
                found = as_values(
                    config["executionTypes"],
                    f"{path}.executionTypes",
                    where,
                    issues,
                    warnings,
                    free_form=True,
                )
                if found is None:
                    return None
                values = found
    if len(issues) != before:
        return None
    return Selector(index, base_url, priority, name, patterns, values, origin)


def _check_patterns(
    patterns: tuple[str, ...],
    path: str,
    where: str,
    *,
    single: bool,
    issues: Issues,
    warnings: Issues,
) -> None:
    for i, pattern in enumerate(patterns):
        check_pattern(pattern, path if single else f"{path}[{i}]", where, issues, warnings)


def check_pattern(pattern: str, at: str, where: str, issues: Issues, warnings: Issues) -> bool:
    """Check one Java pattern: Java's validity (as ``Pattern.compile``), backtracking risk.

    Args:
        pattern: The pattern text.
        at: Its path, for the issue.
        where: The entry prefix of messages (``entry 2 (url): ``).
        issues: Where errors go.
        warnings: Where the backtracking warning goes.

    Returns:
        False when the pattern is unusable (an issue was added).
    """
    try:
        _compile(pattern)
    except ValueError as exc:
        issues.append(ConfigIssue(at, f"{where}invalid regular expression: {exc}"))
        return False
    if nested_quantifier(translate(pattern)):
        warnings.append(
            ConfigIssue(
                at,
                f"{where}pattern {show(pattern)} nests quantifiers and may backtrack "
                "catastrophically; simplify it",
            )
        )
    return True
