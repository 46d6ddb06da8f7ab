"""Spinnaker's v2 parameter selector (kork ``selector.v2``, used by Orca's bakery).

Entries ``{baseUrl, priority, config, parameters: [{name, values}]}`` are stably
sorted by *ascending* priority: the **lowest** number wins, the opposite of v1.
The first entry whose configured parameters are all satisfied wins. A configured
parameter is satisfied by an input parameter of the same name (case-sensitive)
where some configured value matches some input value: ``regex:<re>`` is a full
match of the text after the first colon, anything else plain equality. Extra
input parameters are ignored; an entry with ``parameters: []`` matches any
non-empty input (Java's ``containsAll`` of an empty list), and an entry without
a ``parameters`` key makes Java throw when the selection reaches it, which
:meth:`ParameterService.select` reproduces with :class:`ParameterSelectionError`.
Empty input, or no match, selects the default URL with the default config. A
match returns the entry's config with every default key it lacks, or maps to
``None``, filled in (Java's ``putIfAbsent``); with no entry config and an empty
default config, Java's config is null (``None``).
"""

from __future__ import annotations

import copy
import types
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from selectors_lib._errors import ConfigError, ConfigIssue, SelectorsError
from selectors_lib._javaregex import compile_java
from selectors_lib._regex import Pattern

from ._selectors import MAX_VALUE_LENGTH, check_pattern
from ._spring import Issues, as_int, as_list, as_values, check_url, describe

__all__ = [
    "REGEX_PREFIX",
    "Parameter",
    "ParameterEntry",
    "ParameterSelectionError",
    "ParameterService",
    "SelectedService",
    "parameter_service",
]

REGEX_PREFIX = "regex:"
_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


class ParameterSelectionError(SelectorsError, RuntimeError):
    """The selection reached an entry Java cannot evaluate (no ``parameters`` key).

    Kork's ``containsAll`` on the entry's null parameter list throws a
    ``NullPointerException`` there, failing the request; so does this.
    """


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    # A deep copy, read-only: callers cannot change the service through a result.
    return types.MappingProxyType(copy.deepcopy(dict(value)))


@attrs.frozen
class Parameter:
    """A configured parameter: a name and the values that satisfy it.

    Args:
        name: Matched case-sensitively against input parameter names.
        values: Plain values (equality) or ``regex:<pattern>`` (full match of
            the text after the first colon).
    """

    name: str
    values: tuple[str, ...]
    _tests: tuple[str | Pattern, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        tests: list[str | Pattern] = []
        for value in self.values:
            if value.startswith(REGEX_PREFIX):
                tests.append(compile_java(value[value.index(":") + 1 :]))
            else:
                tests.append(value)
        object.__setattr__(self, "_tests", tuple(tests))

    def satisfied_by(self, inputs: Sequence[object]) -> bool:
        """Whether some configured value matches some of ``inputs``."""
        for test in self._tests:
            if isinstance(test, str):
                if any(test == value for value in inputs):
                    return True
            elif any(
                isinstance(value, str)
                and len(value) <= MAX_VALUE_LENGTH
                and test.fullmatch(value) is not None
                for value in inputs
            ):
                return True
        return False


@attrs.frozen
class ParameterEntry:
    """One v2 entry.

    Args:
        index: Its position in the configured list.
        base_url: Its ``baseUrl``.
        priority: Lower wins.
        config: The entry's config laid over the default config (None: Java's null).
        parameters: All must be satisfied.
        unset: The entry has no ``parameters`` key: reaching it throws, as in Java.
    """

    index: int
    base_url: str
    priority: int
    config: Mapping[str, Any] | None = attrs.field(eq=False, hash=False)
    parameters: tuple[Parameter, ...] = ()
    unset: bool = False

    def matches(self, inputs: Mapping[str, Sequence[object]]) -> bool:
        """Whether every configured parameter is satisfied by ``inputs``.

        Raises:
            ParameterSelectionError: The entry has no ``parameters`` key.
        """
        if self.unset:
            raise ParameterSelectionError(
                f"entry {self.index} ({self.base_url}) has no 'parameters': Java's "
                "selector throws a NullPointerException when it reaches this entry"
            )
        for parameter in self.parameters:
            values = inputs.get(parameter.name)
            if values is None or not parameter.satisfied_by(values):
                return False
        return True


@attrs.frozen
class SelectedService:
    """What :meth:`ParameterService.select` returns.

    Args:
        url: The chosen base URL.
        config: The default config, overlaid by the chosen entry's config
            (read-only; None where Java's is null).
        parameters: The chosen entry's configured parameters (empty for the default).
        default: True when the default service was chosen.
        index: The chosen entry's position in the configured list (None for the default).
    """

    url: str
    config: Mapping[str, Any] | None = attrs.field(eq=False, hash=False)
    parameters: tuple[Parameter, ...] = ()
    default: bool = False
    index: int | None = None


def _inputs(params: Mapping[str, object] | None) -> dict[str, Sequence[object]]:
    if not params:
        return {}
    out: dict[str, Sequence[object]] = {}
    for name, values in params.items():
        # A bare string is one value, not a sequence of characters.
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            out[str(name)] = (values,)
        else:
            out[str(name)] = values
    return out


@attrs.frozen
class ParameterService:
    """The v2 selector: entries tried lowest priority first, then the default.

    Args:
        entries: Sorted by ascending priority, ties in config order.
        default_url: Where requests go when no entry matches.
        default_config: The config returned with the default.
        warnings: Problems that did not stop loading.
    """

    entries: tuple[ParameterEntry, ...]
    default_url: str
    default_config: Mapping[str, Any] = attrs.field(eq=False, hash=False, default=_EMPTY)
    warnings: tuple[ConfigIssue, ...] = ()

    @property
    def urls(self) -> list[str]:
        """The entries' base URLs in the order they are tried, then the default."""
        return [e.base_url for e in self.entries] + [self.default_url]

    def select(self, params: Mapping[str, Sequence[str]] | None) -> SelectedService:
        """Select by input parameters.

        Args:
            params: Parameter name -> values (a bare string counts as one value).

        Returns:
            The :class:`SelectedService`; the default when ``params`` is empty
            or no entry matches.

        Raises:
            ParameterSelectionError: The search reached an entry without
                ``parameters`` (Java throws there too).
        """
        inputs = _inputs(params)
        if inputs:
            for entry in self.entries:
                if entry.matches(inputs):
                    return SelectedService(
                        entry.base_url, entry.config, entry.parameters, False, entry.index
                    )
        return SelectedService(self.default_url, self.default_config, (), True, None)


def _parameter(
    raw: object, path: str, where: str, issues: Issues, warnings: Issues
) -> Parameter | None:
    if not isinstance(raw, Mapping):
        issues.append(
            ConfigIssue(
                path, f"{where}expected a mapping with name and values, got {describe(raw)}"
            )
        )
        return None
    name = raw.get("name")
    good = True
    if name is None:
        issues.append(ConfigIssue(f"{path}.name", f"{where}missing required key 'name'"))
        good = False
    elif not isinstance(name, str):
        issues.append(
            ConfigIssue(f"{path}.name", f"{where}expected a string, got {describe(name)}")
        )
        good = False
    values: tuple[str, ...] | None = None
    if raw.get("values") is None:
        # Java's null list is never satisfied: the entry can never match.
        warnings.append(
            ConfigIssue(f"{path}.values", f"{where}no 'values': this parameter never matches")
        )
        values = ()
    else:
        values = as_values(raw["values"], f"{path}.values", where, issues, warnings)
    if values is not None:
        for i, value in enumerate(values):
            if not value.startswith(REGEX_PREFIX):
                continue
            pattern = value[value.index(":") + 1 :]
            if not check_pattern(pattern, f"{path}.values[{i}]", where, issues, warnings):
                good = False
    if not good or values is None or not isinstance(name, str):
        return None
    return Parameter(name, values)


def _entry(
    index: int,
    raw: object,
    path: str,
    default_config: Mapping[str, Any],
    issues: Issues,
    warnings: Issues,
) -> ParameterEntry | None:
    if not isinstance(raw, Mapping):
        issues.append(
            ConfigIssue(
                path, f"entry {index}: expected a mapping with baseUrl, got {describe(raw)}"
            )
        )
        return None
    raw_url = raw.get("baseUrl")
    where = f"entry {index} ({raw_url if isinstance(raw_url, str) else 'no baseUrl'}): "
    before = len(issues)
    url = None
    if raw_url is None:
        issues.append(
            ConfigIssue(f"{path}.baseUrl", f"entry {index}: missing required key 'baseUrl'")
        )
    else:
        url = check_url(raw_url, f"{path}.baseUrl", where, issues)
    priority = 0  # an unset Java int
    if raw.get("priority") is not None:
        priority = as_int(raw["priority"], f"{path}.priority", where, issues) or 0
    config: Mapping[Any, Any] = {}
    has_config = raw.get("config") is not None
    if has_config:
        if isinstance(raw["config"], Mapping):
            config = raw["config"]
        else:
            issues.append(
                ConfigIssue(
                    f"{path}.config", f"{where}expected a mapping, got {describe(raw['config'])}"
                )
            )
    parameters: list[Parameter] = []
    unset = raw.get("parameters") is None
    if unset:
        warnings.append(
            ConfigIssue(
                f"{path}.parameters",
                f"{where}no 'parameters': Java throws when a selection reaches this entry "
                "(write parameters: [] to match every non-empty input)",
            )
        )
    elif not (isinstance(raw["parameters"], list | tuple | Mapping) and not raw["parameters"]):
        # An empty list is Java's containsAll of nothing: every non-empty input.
        items = as_list(raw["parameters"], f"{path}.parameters", where, issues)
        for i, item in enumerate(items or ()):
            parameter = _parameter(item, f"{path}.parameters[{i}]", where, issues, warnings)
            if parameter is not None:
                parameters.append(parameter)
    if len(issues) != before or url is None:
        return None
    # Java: defaultConfig.forEach((k, v) -> config.putIfAbsent(k, v)). The
    # entry's own keys win, except that putIfAbsent also fills a key the entry
    # maps to null.
    merged = dict(config)
    for key, value in default_config.items():
        if merged.get(key) is None:
            merged[key] = value
    frozen = None if not has_config and not default_config else _frozen_mapping(merged)
    return ParameterEntry(index, url, priority, frozen, tuple(parameters), unset)


def parameter_service(
    base_urls: Sequence[Any] | Mapping[Any, Any],
    default_url: str,
    default_config: Mapping[str, Any] | None = None,
) -> ParameterService:
    """Build a v2 parameter selector.

    Args:
        base_urls: Entries ``{"baseUrl", "priority", "config", "parameters":
            [{"name", "values"}]}`` (a list or an index-keyed map; an empty list
            selects the default for everything).
        default_url: The default service's URL.
        default_config: The default config (``None``: empty).

    Returns:
        The :class:`ParameterService`.

    Raises:
        ConfigError: Every problem found, each naming the entry and key.
    """
    issues: Issues = []
    warnings: Issues = []
    url = check_url(default_url, "defaultUrl", "", issues)
    defaults: Mapping[str, Any] = {}
    config_in: object = default_config
    if isinstance(config_in, Mapping):
        defaults = config_in
    elif config_in is not None:
        issues.append(
            ConfigIssue("defaultConfig", f"expected a mapping, got {describe(config_in)}")
        )
    entries: list[ParameterEntry] = []
    # An empty list is valid here: Orca passes no shards and always gets the default.
    raw_entries: list[Any] = []
    if not (isinstance(base_urls, list | tuple | Mapping) and not base_urls):
        raw_entries = as_list(base_urls, "baseUrls", "", issues) or []
    for index, raw in enumerate(raw_entries):
        entry = _entry(index, raw, f"baseUrls[{index}]", defaults, issues, warnings)
        if entry is not None:
            entries.append(entry)
    if issues or url is None:
        raise ConfigError(issues)
    # sorted() is stable: equal priorities keep config order, as Java's stream sort.
    ordered = tuple(sorted(entries, key=lambda e: e.priority))
    return ParameterService(ordered, url, _frozen_mapping(defaults), tuple(warnings))
