"""What a new user meets first: README's terminal session, the API reference,
the changelog and the demo's account of itself."""

from __future__ import annotations

import io
import os
import pkgutil
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from docs_support import write_routes_yaml

import selectors_lib
from selectors_lib import load_config
from selectors_lib._demo import SAMPLES, example_config_text, run_demo

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
DIRECTIVE = re.compile(r"^::: (selectors_lib(?:\.\w+)*)$", re.M)


def test_readme_cli_session_prints_what_it_shows(tmp_path: Path) -> None:
    write_routes_yaml(README, tmp_path)
    sessions = [
        block
        for block in CONSOLE.findall(README.read_text("utf-8"))
        if block.startswith("$ selectors-lib ")
    ]
    assert sessions, "README shows no selectors-lib session"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1"}
    for block in sessions:
        command, _, shown = block.partition("\n")
        argv = shlex.split(command.removeprefix("$ selectors-lib "))
        done = subprocess.run(
            [sys.executable, "-m", "selectors_lib", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, shown), done.stderr


def test_every_public_module_has_a_reference_page_in_the_nav() -> None:
    package = ROOT / "src/selectors_lib"
    public = {"selectors_lib"} | {
        f"selectors_lib.{info.name}"
        for info in pkgutil.iter_modules([str(package)])
        if not info.name.startswith("_")
    }
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    referenced = set()
    for page in sorted((ROOT / "docs/reference").glob("*.md")):
        referenced |= set(DIRECTIVE.findall(page.read_text("utf-8")))
        assert f"reference/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
    assert public - referenced == set(), "add a docs/reference page for each public module"


def test_changelog_keeps_a_changelog_and_knows_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text("utf-8")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    assert version == selectors_lib.__version__
    assert text.startswith("# Changelog\n")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d\d-\d\d))?$", text, re.M)
    assert [name for name, _ in headings][:1] == ["Unreleased"]
    assert version in [name for name, _ in headings], f"CHANGELOG.md has no [{version}]"
    for name, _ in headings:
        assert re.search(rf"^\[{re.escape(name)}\]: \S+$", text, re.M), f"no link for [{name}]"
    sections = set(re.findall(r"^### (.+)$", text, re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_demo_header_counts_what_it_prints() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    header = re.match(
        r"selectors_lib demo: (\d+) sample requests .*\((\d+) rules and a default\)", text
    )
    assert header is not None, text.splitlines()[0]
    numbered = {int(n) for n in re.findall(r"^\[(\d+)\] ", text, re.M)}
    assert numbered == set(range(1, int(header.group(1)) + 1)) == set(range(1, len(SAMPLES) + 1))
    shown_file = re.search(r"^    file    : (.+)$", text, re.M)
    assert shown_file is not None
    path = Path(shown_file.group(1))
    assert path.read_text("utf-8") == example_config_text()
    assert int(header.group(2)) == len(load_config(path).rules)
