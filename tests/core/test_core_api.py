"""The public API: curated, sorted, complete, typed."""

from __future__ import annotations

import importlib
import inspect
import io
import subprocess
import sys
from pathlib import Path

import pytest

import selectors_lib
from selectors_lib._demo import SAMPLES, run_demo

PUBLIC_MODULES = ["selectors_lib", "selectors_lib.hashing", "selectors_lib.spinnaker"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, Classes, functions.
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert len(set(exported)) == len(exported)
    for item in exported:
        assert hasattr(module, item), item
    # Complete: every public name defined or re-exported at top level is listed.
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not inspect.ismodule(v)
        and n not in {"annotations", "TYPE_CHECKING", "Any"}
        and getattr(v, "__module__", name).startswith("selectors_lib")
    }
    assert public <= set(exported) | {"annotations"}, public - set(exported)


def test_exceptions_subclass_the_nearest_builtin() -> None:
    assert issubclass(selectors_lib.ConfigError, ValueError)
    assert issubclass(selectors_lib.ConfigError, selectors_lib.SelectorsError)
    assert issubclass(selectors_lib.NoEndpointError, LookupError)


def test_py_typed_is_shipped() -> None:
    assert (Path(selectors_lib.__file__).parent / "py.typed").exists()


def test_values_are_frozen_and_hashable() -> None:
    c = selectors_lib.Criteria(application="a")
    with pytest.raises(AttributeError):
        c.application = "b"  # type: ignore[misc]
    assert {c: 1}[selectors_lib.Criteria(application="a")] == 1


def test_demo_routes_every_sample_and_shows_failover() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert text.count("    route   : ") == len(SAMPLES) + 1
    assert "rule    : ui (priority 20)" in text
    assert "rule    : big-applications (priority 40)" in text
    assert "also matched, lower rank: ui" in text
    assert "skipped : " in text
    assert "Readmitted, the key returns to" in text


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, selectors_lib, selectors_lib.hashing;"
        "bad = {'httpx', 'starlette', 'uvicorn', 'redis', 'prometheus_client', 'opentelemetry', 'yaml'}"
        " & {m.split('.')[0] for m in sys.modules};"
        "print(sorted(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# The command line's private helpers are above the core, like cli.py itself.
_CLI_MODULES = {"__main__", "_cli_output", "_demo", "_fleet_cli", "_simulate"}
_ABOVE_CORE = {"asgi", "cli", "consistency", "gateway", "httpx", "otel", "prometheus", "spinnaker"}
_NETWORK_CLIENTS = {"aiohttp", "httptools", "httpx", "redis", "starlette", "uvicorn"}
# The loader parses the health: and gateway: sections with their own settings
# modules (pure validation, imported when a configuration has the section).
_SETTINGS_ONLY = {"health._settings", "gateway._settings"}


def test_the_core_imports_nothing_above_it_and_no_network_client() -> None:
    import ast

    package = Path(selectors_lib.__file__).parent
    problems = []
    for path in sorted(package.glob("_*.py")):
        if path.stem in _CLI_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.level == 1:
                    names = [node.module]
                elif node.module.startswith("selectors_lib."):
                    names = [node.module.removeprefix("selectors_lib.")]
                elif node.level == 0:
                    names = ["<ext>" + node.module]
            elif isinstance(node, ast.Import):
                names = ["<ext>" + alias.name for alias in node.names]
            for name in names:
                if name.startswith("<ext>"):
                    if name[5:].split(".")[0] in _NETWORK_CLIENTS:
                        problems.append(f"{path.name} imports {name[5:]}")
                elif name.split(".")[0] in _ABOVE_CORE | {"health"} and name not in _SETTINGS_ONLY:
                    problems.append(f"{path.name} imports {name}")
    assert problems == []
