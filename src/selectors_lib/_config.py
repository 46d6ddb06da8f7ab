"""Loading and validating the native configuration.

The loader is strict: unknown keys are errors, every problem in a file is
reported at once with its path (``routes[2].match.application: invalid regular
expression: ...``), and nothing is built unless everything is valid. The format
is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import hashing
from ._bulk import gc_paused
from ._config_consistency import consistency_to_dict, parse_consistency
from ._config_match import parse_match
from ._errors import ConfigError
from ._fingerprint import install_canonical_form
from ._match import FieldMatch, Match, getter
from ._pool import MISSING_KEY_POLICIES, Endpoint, Pool
from ._regex import ENGINES, compile_pattern
from ._router import Router, RouterConfig, Rule, Settings, install_loader
from ._shadow import report_shadowed
from ._source import DuplicateKeyError, load_json, load_yaml, read_limited
from ._tables import TableKey, shared_table, table_key
from ._validate import INT32, Checker, join, kind, show, text_problem

__all__ = ["config_to_dict", "load_config", "load_router", "parse_config", "read_source"]

Source = str | os.PathLike[str] | Mapping[str, Any]


def load_router(source: Source) -> Router:
    """Load a configuration and build a :class:`Router` serving it.

    Args:
        source: A path to a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file, or a
            mapping already parsed.

    Returns:
        A ready router.

    Raises:
        ConfigError: The file cannot be read or parsed, or the configuration is
            invalid; every problem found is listed with its path.
    """
    return Router(load_config(source))


def load_config(source: Source) -> RouterConfig:
    """Load and validate a configuration without building a router.

    Args:
        source: A file path or a mapping (see :func:`load_router`).

    Returns:
        The validated :class:`RouterConfig`.

    Raises:
        ConfigError: Anything is wrong; nothing is half-built.
    """
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        return parse_config(read_source(name), source=name)
    return parse_config(source)


def read_source(path: str | os.PathLike[str]) -> object:
    """Read and parse a configuration file by its extension.

    Only a regular file of at most ``MAX_SOURCE_BYTES`` is read (never a FIFO or
    a device), and a key given twice in one mapping is an error in every format.

    Raises:
        ConfigError: Unreadable, not a regular file, too large, unknown extension,
            a syntax error or a duplicate key.
        ImportError: A YAML file and PyYAML is not installed (names the extra).
    """
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise ConfigError.single(
            "", f"unknown file type {suffix!r}: use .yaml, .toml or .json", name
        )
    try:
        raw = read_limited(name)
    except OSError as exc:
        raise ConfigError.single("", f"cannot read file: {exc.strerror or exc}", name) from None
    except ValueError as exc:
        raise ConfigError.single("", f"cannot read file: {exc}", name) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError.single("", f"not UTF-8 text (byte {exc.start})", name) from None
    try:
        if suffix == ".toml":
            import tomllib  # only TOML files need it (import cost)

            return tomllib.loads(text)
        if suffix == ".json":
            return load_json(text)
        return load_yaml(text)
    except RecursionError:
        raise ConfigError.single("", "nested too deeply", name) from None
    except DuplicateKeyError as exc:
        raise ConfigError.single("", str(exc), name) from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError.single("", f"syntax error: {exc}", name) from None


# -- validation -------------------------------------------------------------------


_TOP_KEYS = ("version", "settings", "endpoints", "routes", "health", "gateway")
_ROUTE_KEYS = ("name", "description", "priority", "default", "match", "target")
#: Rings with more points than this are reported at load (build cost).
_LARGE_RING = 1 << 17
_TARGET_KEYS = (
    "endpoints",
    "algorithm",
    "hash_on",
    "missing_key",
    "panic_threshold",
    "options",
    "consistency",
)
_MEMBER_KEYS = ("id", "url", "weight")
_SETTINGS_KEYS = ("cache_size", "regex_engine", "max_value_length")


def parse_config(data: object, *, source: str | None = None) -> RouterConfig:
    """Validate a parsed document and build a :class:`RouterConfig`.

    Args:
        data: The parsed document (a mapping).
        source: Where it came from, for messages.

    Raises:
        ConfigError: Every problem found, each with its path.
    """
    check = Checker()
    try:
        with gc_paused():
            config = _parse(check, data, source)
    except RecursionError:
        check.error("", "nested too deeply")
        config = None
    if check.issues or config is None:
        raise ConfigError(check.issues, source)
    return config


def _parse(check: Checker, data: object, source: str | None) -> RouterConfig | None:
    top = check.mapping(data, "", _TOP_KEYS)
    if top is None:
        return None
    if "version" in top and (top["version"] != 1 or isinstance(top["version"], bool)):
        check.error("version", f"unsupported version {show(top['version'])}; expected 1")
    settings = _settings(check, top.get("settings"))
    catalogue = _catalogue(check, top.get("endpoints"))
    routes = top.get("routes")
    if routes is None:
        check.error("routes", "missing: a configuration needs at least a default route")
        return None
    if not isinstance(routes, list):
        check.error("routes", f"expected a list, got {kind(routes)}")
        return None
    rules: list[tuple[int, Rule]] = []
    defaults: list[tuple[int, Rule]] = []
    names: dict[str, int] = {}
    known_urls: dict[str, tuple[str, str]] = {
        e.id: (e.url, f"endpoints.{e.id}") for e in catalogue.values()
    }
    tables: dict[TableKey, hashing.HashTable] = {}  # built once per load, by pool
    for index, raw in enumerate(routes):
        path = f"routes[{index}]"
        name, rule = _rule(check, raw, path, settings, catalogue, known_urls, tables)
        # A name is checked for duplicates even when its rule has other errors:
        # fixing those must not reveal a new one.
        if name is not None:
            check.unique_name(names, name, "routes", index, "rule")
        if rule is not None:
            (defaults if rule.default else rules).append((index, rule))
    # Every route marked default counts, valid or not: a second one is reported
    # even while the first has errors of its own.
    marked = [
        i for i, r in enumerate(routes) if isinstance(r, Mapping) and r.get("default") is True
    ]
    if not marked:
        check.error("routes", "no default route: add one route with 'default: true'")
    for index in marked[1:]:
        raw_name = routes[index].get("name")
        label = f" ({show(raw_name)})" if isinstance(raw_name, str) else ""
        check.error(
            f"routes[{index}].default",
            f"a second default route{label}; exactly one is allowed (the first is "
            f"routes[{marked[0]}])",
        )
    health = None
    if top.get("health") is not None:  # the map of every endpoint is for its probes only
        endpoints = {e.id: e for _, r in (*rules, *defaults) for e in r.target.endpoints}
        endpoints.update(catalogue)
        health = _health(check, top["health"], endpoints)
    gateway = _gateway(check, top.get("gateway"), names)
    if check.issues or not defaults:
        return None
    report_shadowed(check, rules, settings.regex_engine)
    return RouterConfig(
        rules=tuple(rule for _, rule in rules),
        default=defaults[0][1],
        settings=settings,
        health=health,
        warnings=tuple(check.warnings),
        source=source,
        gateway=gateway,
        tables=tables,
    )


def _settings(check: Checker, raw: object) -> Settings:
    if raw is None:
        return Settings()
    data = check.mapping(raw, "settings", _SETTINGS_KEYS)
    if data is None:
        return Settings()
    default = Settings()
    cache_size = default.cache_size
    if "cache_size" in data:
        cache_size = check.integer(data["cache_size"], "settings.cache_size", 0, 10_000_000) or 0
    engine = default.regex_engine
    if "regex_engine" in data:
        value = check.one_of(data["regex_engine"], "settings.regex_engine", ENGINES)
        if value is not None:
            engine = value
            try:
                compile_pattern("x", engine=engine)
            except ImportError as exc:
                check.error("settings.regex_engine", str(exc))
    max_len = default.max_value_length
    if "max_value_length" in data:
        max_len = (
            check.integer(data["max_value_length"], "settings.max_value_length", 1, 1 << 20)
            or max_len
        )
    return Settings(cache_size=cache_size, regex_engine=engine, max_value_length=max_len)


class _Catalogue(dict[str, Endpoint]):
    """The declared endpoints, and the ids declared with an error already reported."""

    invalid: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.invalid = set()


def _catalogue(check: Checker, raw: object) -> dict[str, Endpoint]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        check.error("endpoints", f"expected a mapping of id to URL, got {kind(raw)}")
        return {}
    out = _Catalogue()
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            check.error("endpoints", f"endpoint ids must be non-empty strings, got {show(key)}")
            continue
        path = join("endpoints", key)
        problem = text_problem(key)
        if problem is not None:
            check.error(path, f"endpoint id {problem}")
            out.invalid.add(key)
            continue
        if isinstance(value, Mapping):
            entry = check.mapping(value, path, ("url",))
            url = None
            if entry is not None and "url" not in entry:
                check.error(path, "missing key 'url'")
            elif entry is not None:
                url = check.url(entry["url"], f"{path}.url")
        else:
            url = check.url(value, path)
        if url is not None:
            out[key] = Endpoint(key, url)
        else:
            out.invalid.add(key)
    return out


def _health(check: Checker, raw: object, endpoints: Mapping[str, Endpoint]) -> Any:
    if raw is None:
        return None
    from .health._settings import parse_health_settings

    settings, issues = parse_health_settings(raw, "health", endpoints)
    check.issues.extend(issues)
    return settings


def _gateway(check: Checker, raw: object, rule_names: Mapping[str, int]) -> Any:
    if raw is None:
        return None
    from .gateway._settings import parse_gateway_settings

    settings, issues = parse_gateway_settings(raw, "gateway", rule_names)
    check.issues.extend(issues)
    return settings


def _rule(
    check: Checker,
    raw: object,
    path: str,
    settings: Settings,
    catalogue: Mapping[str, Endpoint],
    known_urls: dict[str, tuple[str, str]],
    tables: dict[TableKey, hashing.HashTable],
) -> tuple[str | None, Rule | None]:
    """The rule's valid name (or None) and the rule (None if anything is wrong)."""
    data = check.mapping(raw, path, _ROUTE_KEYS)
    if data is None:
        return None, None
    with check.nothing_new() as ok:
        name = None
        if "name" not in data:
            check.error(path, "missing key 'name'")
        else:
            name = check.string(data["name"], f"{path}.name", max_len=200)
        if "description" in data and not isinstance(data["description"], str):
            check.error(
                f"{path}.description", f"expected a string, got {kind(data['description'])}"
            )
        is_default = bool(check.boolean(data.get("default", False), f"{path}.default"))
        priority: int | None = None
        if is_default:
            for key in ("priority", "match"):
                if key in data:
                    check.error(
                        f"{path}.{key}",
                        "the default route takes every request no other route matches; it has no "
                        + key,
                    )
        else:
            priority = 0
            if "priority" in data:
                priority = check.integer(data["priority"], f"{path}.priority", *INT32)
        match = parse_match(check, data.get("match"), f"{path}.match", settings)
        target = None
        if "target" not in data:
            check.error(path, "missing key 'target'")
        else:
            target = _target(check, data["target"], f"{path}.target", catalogue, known_urls, tables)
    if not ok[0] or name is None or match is None or target is None:
        return name, None
    return name, Rule(name, priority, match, target, default=is_default)


def _target(
    check: Checker,
    raw: object,
    path: str,
    catalogue: Mapping[str, Endpoint],
    known_urls: dict[str, tuple[str, str]],
    tables: dict[TableKey, hashing.HashTable],
) -> Pool | None:
    if isinstance(raw, str):
        raw = {"endpoints": [raw]}
    data = check.mapping(raw, path, _TARGET_KEYS)
    if data is None:
        return None
    with check.nothing_new() as ok:
        members: list[tuple[Endpoint, int]] = []
        items = None
        if "endpoints" not in data:
            check.error(path, "missing key 'endpoints'")
        else:
            items = check.nonempty_list(data["endpoints"], f"{path}.endpoints")
        if items is not None:
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                member = _member(check, item, f"{path}.endpoints[{i}]", catalogue, known_urls)
                if member is None:
                    continue
                if member[0].id in seen:
                    check.error(
                        f"{path}.endpoints[{i}]",
                        f"endpoint {member[0].id!r} is already in this pool "
                        f"(endpoints[{seen[member[0].id]}])",
                    )
                    continue
                seen[member[0].id] = i
                members.append(member)
        algorithm = check.one_of(
            data.get("algorithm", hashing.DEFAULT_ALGORITHM),
            f"{path}.algorithm",
            hashing.ALGORITHMS,
        )
        hash_on: tuple[str, ...] = ()
        if "hash_on" in data and data["hash_on"] != []:
            sources = check.strings(data["hash_on"], f"{path}.hash_on")
            for i, source in enumerate(sources or ()):
                try:
                    getter(source)
                except ValueError as exc:
                    check.error(f"{path}.hash_on[{i}]", str(exc))
            hash_on = sources or ()
        missing_key = check.one_of(
            data.get("missing_key", "first"), f"{path}.missing_key", MISSING_KEY_POLICIES
        )
        panic = data.get("panic_threshold", 0.5)
        if isinstance(panic, bool) or not isinstance(panic, int | float) or not 0 <= panic <= 1:
            check.error(
                f"{path}.panic_threshold", f"expected a number from 0 to 1, got {show(panic)}"
            )
        options: dict[str, int] = {}
        if "options" in data:
            raw_options = data["options"]
            if not isinstance(raw_options, Mapping):
                check.error(f"{path}.options", f"expected a mapping, got {kind(raw_options)}")
            else:
                for key, value in raw_options.items():
                    if not isinstance(key, str):
                        # str() of a huge integer key raises; option names are words.
                        check.error(
                            f"{path}.options", f"option names must be strings, got {show(key)}"
                        )
                        continue
                    number = check.integer(value, join(f"{path}.options", key), 1, 1 << 32)
                    if number is not None:
                        options[key] = number
        consistency = None
        if "consistency" in data:
            consistency = parse_consistency(
                check,
                data["consistency"],
                f"{path}.consistency",
                lambda item, where: _member(check, item, where, catalogue, known_urls),
            )
    if not ok[0] or algorithm is None or missing_key is None:
        return None
    pool = Pool(
        endpoints=tuple(e for e, _ in members),
        weights=tuple(w for _, w in members),
        algorithm=algorithm,
        hash_on=hash_on,
        missing_key=missing_key,
        panic_threshold=float(panic),
        options=tuple(sorted(options.items())),
        consistency=consistency,
    )
    if len(pool.endpoints) > 1:
        if missing_key == "reject" and not hash_on:
            check.error(
                f"{path}.missing_key",
                "'reject' with no hash_on would reject every request; add hash_on sources",
            )
            return None
        key = table_key(pool)
        table = tables.get(key)
        if table is None:
            try:
                # Kept for this load (the router reuses it, however many pools
                # there are) and in the small cache shared across loads.
                table = shared_table(pool)
            except (ValueError, TypeError) as exc:
                check.error(path, f"{algorithm}: {exc}")
                return None
            tables[key] = table
        points = getattr(table, "ring_size", 0)
        if points > _LARGE_RING:
            check.warn(
                f"{path}.options",
                f"the ring has {points:,} points: it takes seconds and hundreds of MB to "
                "build on every load; lower max_ring_size or use another algorithm",
            )
    return pool


def _member(
    check: Checker,
    item: object,
    path: str,
    catalogue: Mapping[str, Endpoint],
    known_urls: dict[str, tuple[str, str]],
) -> tuple[Endpoint, int] | None:
    if isinstance(item, str):
        item = {"id": item}
    data = check.mapping(item, path, _MEMBER_KEYS)
    if data is None:
        return None
    weight = 1
    if "weight" in data:
        weight = check.integer(data["weight"], f"{path}.weight", 1, 1_000_000) or 0
    if "url" in data:
        url = check.url(data["url"], f"{path}.url")
        endpoint_id = check.string(data["id"], f"{path}.id") if "id" in data else url
        if url is None or endpoint_id is None:
            return None
        if endpoint_id in known_urls and known_urls[endpoint_id][0] != url:
            other_url, other_path = known_urls[endpoint_id]
            check.error(
                path,
                f"endpoint {endpoint_id!r} has URL {url!r} here but {other_url!r} at {other_path}",
            )
            return None
        known_urls.setdefault(endpoint_id, (url, path))
        endpoint = Endpoint(endpoint_id, url)
    elif "id" in data:
        endpoint_id = check.string(data["id"], f"{path}.id")
        if endpoint_id is None:
            return None
        if isinstance(catalogue, _Catalogue) and endpoint_id in catalogue.invalid:
            return None  # declared, with its error reported at endpoints.<id>: no cascade
        if endpoint_id not in catalogue and "://" in endpoint_id:
            check.error(
                path,
                f"{endpoint_id!r:.80} is a URL where an endpoint id belongs: declare it under "
                f"endpoints and target its id, or write {{url: {endpoint_id:.80}}}",
            )
            return None
        if endpoint_id not in catalogue:
            declared = set(catalogue)
            if isinstance(catalogue, _Catalogue):
                declared |= catalogue.invalid
            hint = (
                f"; known: {', '.join(sorted(declared))}"
                if declared
                else "; give a url or declare it under endpoints"
            )
            check.error(path, f"unknown endpoint {endpoint_id!r}{hint}")
            return None
        endpoint = catalogue[endpoint_id]
    else:
        check.error(path, "give an endpoint id or a url")
        return None
    return (endpoint, weight) if weight else None


# -- dumping -----------------------------------------------------------------------------


def config_to_dict(config: RouterConfig) -> dict[str, Any]:
    """The effective configuration in canonical native form (loadable again).

    Every default is spelled out and endpoints are gathered into one catalogue.
    """

    def field(m: FieldMatch) -> dict[str, Any]:
        out: dict[str, Any]
        if m.present is not None:
            out = {"present": m.present}
        elif m.regex:
            out = {"regex": list(m.regex)}
        else:
            out = {"equals": list(m.equals)}
        out["case"] = m.case
        if m.syntax != "re":
            out["syntax"] = m.syntax
        return out

    def match(m: Match) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for source, matcher in m.fields:
            if source.startswith("attributes."):
                out.setdefault("attributes", {})[source[11:]] = field(matcher)
            else:
                out[source] = field(matcher)
        return out

    def target(pool: Pool) -> dict[str, Any]:
        out = {
            "endpoints": [
                {"id": e.id, "weight": w} for e, w in zip(pool.endpoints, pool.weights, strict=True)
            ],
            "algorithm": pool.algorithm,
            "hash_on": list(pool.hash_on),
            "missing_key": pool.missing_key,
            "panic_threshold": pool.panic_threshold,
            "options": dict(pool.options),
        }
        if pool.consistency is not None:
            out["consistency"] = consistency_to_dict(pool.consistency)
        return out

    routes: list[dict[str, Any]] = []
    for rule in config.rules:
        routes.append(
            {
                "name": rule.name,
                "priority": rule.priority,
                "match": match(rule.match),
                "target": target(rule.target),
            }
        )
    routes.append(
        {"name": config.default.name, "default": True, "target": target(config.default.target)}
    )
    out: dict[str, Any] = {
        "version": 1,
        "settings": {
            "cache_size": config.settings.cache_size,
            "regex_engine": config.settings.regex_engine,
            "max_value_length": config.settings.max_value_length,
        },
        "endpoints": {e.id: e.url for e in config.endpoints},
        "routes": routes,
    }
    if config.health is not None:
        to_dict: Callable[[], dict[str, Any]] = config.health.to_dict
        out["health"] = to_dict()
    if config.gateway is not None:
        gateway_dict: Callable[[], dict[str, Any]] = config.gateway.to_dict
        out["gateway"] = gateway_dict()
    return out


# The router reloads through this loader without importing this module.
install_loader(load_config)
install_canonical_form(config_to_dict)
