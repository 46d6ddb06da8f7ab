"""Each documented example runs in the install its page names, or names what else it needs.

An example imports only the core dependencies and those of the ``[all]`` extra,
unless the line before it says ``Needs: `pip install 'selectors-lib[x]' pkg` ``:
then it may import exactly what that install provides.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shlex
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NEEDS = re.compile(r"^Needs: `pip install ([^`]+)`\n\n$")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(text).name) for text in requirements}


def install_provides(command: str) -> set[str]:
    """The distributions ``pip install <command>`` brings in, by their own names."""
    names = requirement_names(PROJECT["dependencies"])
    for word in shlex.split(command):
        if word.startswith("selectors-lib"):
            for extra in Requirement(word).extras:
                names |= requirement_names(PROJECT["optional-dependencies"][extra])
        else:
            names.add(canonicalize_name(word))
    return names


@cache
def distribution_of(module: str) -> str:
    """The distribution that provides ``module`` (a dotted name), as installed here."""
    top, *rest = module.split(".")
    candidates = importlib.metadata.packages_distributions().get(top, [])
    if len(candidates) > 1 and rest:
        # A namespace package (opentelemetry): find whose files hold the subpackage.
        prefix = f"{top}/{rest[0]}"
        candidates = [
            name
            for name in candidates
            if any(str(f).startswith(prefix) for f in importlib.metadata.files(name) or ())
        ]
    if len(candidates) != 1:
        return canonicalize_name(top)  # not installed here: the usual naming
    return canonicalize_name(candidates[0])


def third_party_imports(code: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {
        name
        for name in found
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] != "selectors_lib"
    }


def examples() -> list[object]:
    found = []
    for page in PAGES:
        text = page.read_text("utf-8")
        for number, match in enumerate(FENCE.finditer(text), 1):
            before = text[: match.start()]
            line = before[before.rstrip("\n").rfind("\n") + 1 :]
            needs = NEEDS.match(line)
            command = needs.group(1) if needs else "'selectors-lib[all]'"
            found.append(pytest.param(match.group(1), command, id=f"{page.name}-{number}"))
    return found


@pytest.mark.parametrize(("code", "command"), examples())
def test_example_imports_only_what_its_install_provides(code: str, command: str) -> None:
    provides = install_provides(command)
    missing = {
        name: distribution_of(name)
        for name in third_party_imports(code)
        if distribution_of(name) not in provides
    }
    assert not missing, f"imports {missing} beyond `pip install {command}`: add a Needs: line"


def test_the_check_sees_what_all_lacks() -> None:
    # The pages' two known cases: what [all] leaves out must be caught.
    all_install = install_provides("'selectors-lib[all]'")
    assert distribution_of("starlette.applications") not in all_install
    assert distribution_of("opentelemetry.sdk.metrics") == "opentelemetry-sdk"
    assert distribution_of("opentelemetry.sdk.metrics") not in all_install
    assert distribution_of("yaml") in all_install


def test_named_needs_are_real_distributions() -> None:
    for page in PAGES:
        for command in re.findall(r"^Needs: `pip install ([^`]+)`$", page.read_text("utf-8"), re.M):
            for word in shlex.split(command):
                if word.startswith("selectors-lib"):
                    assert Requirement(word).extras <= set(PROJECT["optional-dependencies"])
                else:
                    importlib.metadata.distribution(word)  # raises if there is none
