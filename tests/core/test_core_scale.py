"""Load-time work at scale: shadowing analysis, tables, the cache, imports, layering."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import selectors_lib
from selectors_lib import Criteria, FieldMatch, load_config, load_router
from selectors_lib._pool import Pool
from selectors_lib._regex import cheap_to_run, compile_pattern
from selectors_lib._router import Rule
from selectors_lib._shadow import _Covers
from strategies import native_configs

SRC = Path(selectors_lib.__file__).parent


def pairwise_shadowed(rules: list[tuple[int, Rule]]) -> dict[str, str]:
    """The oracle: the O(rules²) analysis the loader used to run."""

    def covers(wide: FieldMatch, narrow: FieldMatch) -> bool:
        if wide.present is not None:
            return (narrow.present is None and wide.present) or narrow.present == wide.present
        if narrow.present is not None or wide.case != narrow.case:
            return False
        if narrow.regex:
            return wide.regex == narrow.regex
        return all(wide.test(v) for v in narrow.equals)

    out: dict[str, str] = {}
    order = sorted(rules, key=lambda p: (-(p[1].priority or 0), p[0]))
    for pos, (index, rule) in enumerate(order):
        narrow = rule.match.as_mapping()
        for earlier_index, earlier in order[:pos]:
            wide = earlier.match.as_mapping()
            if all(src in narrow and covers(m, narrow[src]) for src, m in wide.items()):
                out[f"routes[{index}]"] = f"rule {earlier.name!r} (routes[{earlier_index}])"
                break
    return out


@settings(max_examples=300, deadline=None)
@given(native_configs())
def test_shadowing_finds_what_the_pairwise_scan_finds(data: dict[str, Any]) -> None:
    # The generated patterns are all cheap to run except "a|b", which the
    # loader refuses to run over values: the only allowed difference is that
    # it may miss a warning that needs it, never report one the scan does not.
    config = load_config(data)
    found = {w.path: w.message for w in config.warnings if "can never win" in w.message}
    rules = [(i, r) for i, r in enumerate(config.rules)]
    expected = pairwise_shadowed(rules)
    for path, message in found.items():
        assert path in expected, (path, message, expected)
        assert expected[path] in message, (path, message, expected)
    uses_branch = any(
        r.match.fields and any("|" in p for _, m in r.match.fields for p in m.regex)
        for r in config.rules
    )
    if not uses_branch:
        assert set(found) == set(expected)


def test_a_catastrophic_pattern_is_never_run_over_configured_values() -> None:
    # (a+)+$ over "aaaa...a!" backtracks for minutes; the loader must not try.
    data = {
        "settings": {"regex_engine": "re"},
        "endpoints": {"a": "https://a.test", "b": "https://b.test"},
        "routes": [
            {
                "name": "wide",
                "priority": 9,
                "match": {"application": {"regex": "(a+)+$"}},
                "target": "a",
            },
            {"name": "narrow", "match": {"application": "a" * 40 + "!"}, "target": "b"},
            {"name": "main", "default": True, "target": "a"},
        ],
    }
    config = load_config(data)
    assert not any("can never win" in w.message for w in config.warnings)

    calls: list[str] = []

    class Spy:
        def fullmatch(self, value: str) -> object:
            calls.append(value)
            return None

    wide = FieldMatch(regex=("(a+)+$",), compiled=(Spy(),))
    assert not _Covers("re")(wide, FieldMatch(equals=("a" * 40 + "!",)))
    assert calls == []
    # A cheap pattern does run, and proves coverage.
    cheap = FieldMatch(regex=("app-.*",), compiled=(compile_pattern("app-.*"),))
    assert _Covers("re")(cheap, FieldMatch(equals=("app-1", "app-2")))


@pytest.mark.parametrize(
    ("pattern", "cheap"),
    [
        ("app-.*", True),
        ("[a-z]+-[0-9]+", True),
        ("https?://x", True),
        ("(a+)+$", False),
        ("(a|aa)*b", False),
        ("a*a*a*b", False),
        ("(?=a)a", False),
        ("[", False),
    ],
)
def test_cheap_to_run(pattern: str, cheap: bool) -> None:
    assert cheap_to_run(pattern) is cheap


def test_shadowing_is_reported_at_scale_with_the_first_cover() -> None:
    routes: list[dict[str, Any]] = [
        {"name": f"app{i}", "priority": 5, "match": {"application": f"a{i}"}, "target": "e"}
        for i in range(3000)
    ]
    routes.append(
        {"name": "deck", "priority": 4, "match": {"origin": {"present": True}}, "target": "e"}
    )
    routes.append(
        {
            "name": "late",
            "priority": 1,
            "match": {"application": "a7", "origin": "deck"},
            "target": "e",
        }
    )
    routes.append({"name": "d", "default": True, "target": "e"})
    config = load_config({"endpoints": {"e": "https://e.test"}, "routes": routes})
    shadowed = {w.path: w.message for w in config.warnings}
    assert list(shadowed) == ["routes[3001]"]
    assert "rule 'app7' (routes[7])" in shadowed["routes[3001]"]


def test_each_table_is_built_once_per_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from selectors_lib import _tables

    monkeypatch.setattr(_tables, "_TABLES", type(_tables._TABLES)())
    built: list[tuple[str, ...]] = []
    real = Pool.build_table

    def counting(self: Pool) -> Any:
        built.append(self.ids)
        return real(self)

    monkeypatch.setattr(Pool, "build_table", counting)
    routes: list[dict[str, Any]] = [
        {
            "name": f"r{i}",
            "match": {"application": f"a{i}"},
            "target": {
                "endpoints": [{"url": f"https://r{i}-{j}.test"} for j in range(3)],
                "algorithm": "maglev",
            },
        }
        for i in range(40)  # more pools than the shared cache keeps
    ]
    routes.append({"name": "again", "match": {"origin": "x"}, "target": routes[0]["target"]})
    routes.append({"name": "d", "default": True, "target": routes[1]["target"]})
    router = load_router({"routes": routes})
    assert len(built) == 40 == len(set(built))
    router.replace_config(router.config)
    assert len(built) == 40


def test_the_cache_stays_bounded_and_correct_under_threads() -> None:
    data = {
        "settings": {"cache_size": 64},
        "routes": [
            {
                "name": "users",
                "match": {"origin": "deck"},
                "target": {
                    "endpoints": [{"url": f"https://r{j}.test"} for j in range(5)],
                    "hash_on": ["authenticated_user"],
                },
            },
            {"name": "d", "default": True, "target": {"endpoints": [{"url": "https://main.test"}]}},
        ],
    }
    cached, plain = load_router(data), load_router({**data, "settings": {"cache_size": 0}})
    users = [Criteria(origin="deck", authenticated_user=f"u{i}") for i in range(500)]
    expected = {c: plain.select(c) for c in users}
    errors: list[str] = []

    def worker(offset: int) -> None:
        for round_ in range(4):
            for c in users[offset:] + users[:offset]:
                if cached.select(c) != expected[c]:
                    errors.append(f"{c} round {round_}")
                cache = cached._snapshot.cache
                assert cache is not None
                if len(cache) > 64:
                    errors.append(f"cache grew to {len(cache)}")

    threads = [threading.Thread(target=worker, args=(k * 97,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    cache = cached._snapshot.cache
    assert cache is not None
    assert 0 < len(cache) <= 64
    assert len(cached._snapshot._cache_order) <= 64


def test_import_loads_nothing_select_does_not_need() -> None:
    code = (
        "import sys, selectors_lib\n"
        "heavy = ['asyncio', 'tomllib', 'selectors_lib._reloader', 'selectors_lib.health',"
        " 'selectors_lib.asgi', 'selectors_lib.httpx', 'yaml', 'cachetools', 'logging',"
        " 'selectors_lib._config', 'selectors_lib._javaregex', 'json', 'pathlib', 'decimal',"
        " 'urllib.parse',"
        # Classes select() never builds: creating them was a third of the import.
        " 'selectors_lib._events', 'selectors_lib._decision', 'selectors_lib._consistent',"
        " 'selectors_lib._endpoint_health', 'selectors_lib._issues',"
        " 'selectors_lib._fingerprint', 'selectors_lib._regex', 'selectors_lib.hashing._jump',"
        " 'selectors_lib.hashing._bounded', 'selectors_lib.hashing._ring',"
        " 'selectors_lib.hashing._maglev']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        # Reload works before anything imported the loader: the first call imports it.
        "from selectors_lib._router import _loader\n"
        "assert _loader[0].__module__ == 'selectors_lib'\n"
        "d = {'routes': [{'name': 'd', 'default': True,"
        " 'target': {'endpoints': [{'url': 'https://a.test'}]}}]}\n"
        "assert _loader[0](d).default.target.endpoints[0].url == 'https://a.test'\n"
        "assert selectors_lib.load_config.__module__ == 'selectors_lib._config'\n"
        "assert selectors_lib.FileReloader.__name__ == 'FileReloader'\n"
        "assert selectors_lib.HeaderMapping.__name__ == 'HeaderMapping'\n"
        "assert all(hasattr(selectors_lib, n) for n in selectors_lib.__all__)\n"
        "assert set(selectors_lib.__all__) <= set(dir(selectors_lib))\n"
        # The lazy names are the defining modules' objects, wherever they are read.
        "import selectors_lib._events as ev, selectors_lib._decision as de\n"
        "from selectors_lib import _router, _pool, _errors, hashing\n"
        "assert selectors_lib.SelectEvent is ev.SelectEvent and selectors_lib.EventHub is ev.EventHub\n"
        "assert selectors_lib.Decision is _router.Decision is de.Decision\n"
        "assert _pool.Pick is de.Pick and _pool.EndpointHealth is selectors_lib.EndpointHealth\n"
        "assert _errors.ConfigIssue is selectors_lib.ConfigIssue\n"
        "assert hashing.jump_hash(1, 10) == hashing._jump.jump_hash(1, 10)\n"
        "assert {'BoundedLoad', 'jump_hash'} <= set(dir(hashing))\n"
        "for m in (_router, _pool, _errors, hashing):\n"
        "    try:\n"
        "        m.nope\n"
        "    except AttributeError as e:\n"
        "        assert 'nope' in str(e)\n"
        "    else:\n"
        "        raise AssertionError(m)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SRC.parent
    )
    assert done.stdout.strip() == "[]", done.stdout
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        selectors_lib.nope  # noqa: B018


# Run in a fresh interpreter: another test's thread inside a load (a reloader)
# would hold the collector paused past this test's own load.
_GC_CHECK = """
import gc

from selectors_lib import load_config, load_router

routes = [
    {"name": f"r{i}", "match": {"application": f"a{i}"},
     "target": {"endpoints": [{"url": f"https://r{i}.test"}]}}
    for i in range(50)
]
routes.append({"name": "d", "default": True, "target": {"endpoints": [{"url": "https://d.test"}]}})
data = {"routes": routes}


def generation(obj):
    return next((g for g in range(3) if any(o is obj for o in gc.get_objects(g))), None)


gc.collect()  # young generations empty and their counters reset: no collection mid-check
# CPython 3.12 starts with objects of its own in the permanent generation:
# unfreezing would release them too, so nothing is promoted there.
frozen = gc.get_freeze_count()
router = load_router(data)
assert gc.isenabled()
assert gc.get_freeze_count() == frozen
# Without the promotion, the first allocation after the build collects them
# from the youngest generation into the middle one, not the oldest.
promoted = frozen == 0
assert (generation(router.config.rules[0]) == 2) is promoted
assert (generation(router._snapshot.states[0]) == 2) is promoted

# The application's frozen objects stay frozen; nothing is promoted then.
gc.collect()
kept = {"a": []}
gc.freeze()
assert generation(kept) is None  # frozen: in no generation
router = load_router(data)
assert generation(kept) is None
assert generation(router.config.rules[0]) != 2
gc.unfreeze()
assert generation(kept) == 2

# A collector the caller disabled stays disabled, its generations untouched.
gc.collect()
gc.disable()
config = load_config(data)
assert not gc.isenabled()
assert generation(config.rules[0]) == 0
print("ok")
"""


def test_a_load_resumes_the_collector_with_what_it_built_in_the_oldest_generation() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _GC_CHECK],
        capture_output=True,
        text=True,
        check=False,
        cwd=SRC.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _imports(module: str) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module)
    return found


def test_core_is_layered_loader_above_router_above_events() -> None:
    assert not {"_router", "_config", "_reloader"} & _imports("_events")
    assert not {"_config", "_reloader"} & _imports("_router")
    for below in ("_index", "_snapshot", "_tables", "_shadow"):
        # They may name the router's types (under TYPE_CHECKING), never the loader.
        assert not {"_config", "_reloader"} & _imports(below), below
    assert "_router" in _imports("_config")


def test_reload_goes_through_the_installed_loader(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(
        '{"routes": [{"name": "d", "default": true, "target": {"endpoints": [{"url": "https://a.test"}]}}]}'
    )
    router = load_router(path)
    path.write_text(
        '{"routes": [{"name": "d", "default": true, "target": {"endpoints": [{"url": "https://b.test"}]}}]}'
    )
    assert router.reload(path).default.target.endpoints[0].url == "https://b.test"
    assert router.select(Criteria()).url == "https://b.test"


def test_yaml_is_read_with_the_same_result_by_the_c_loader(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    examples = [
        *(SRC / "examples").glob("*.yaml"),
        *(SRC.parent.parent / "docs" / "examples").glob("*.yaml"),
    ]
    assert examples
    for example in examples:
        text = example.read_text()
        try:
            slow = yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue
        assert yaml.load(text, Loader=yaml.CSafeLoader) == slow, example
