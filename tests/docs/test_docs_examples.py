"""Every ```python example in README.md and docs/ runs, and relative links resolve.

A page that shows a ```yaml block opening with ``# routes.yaml`` gives its
examples that file; others get the bundled example under that name. An example
followed by a line ending in "prints:" and a ```text block must print exactly that.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_support import write_routes_yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
OUTPUT = re.compile(r"^```python\n(.*?)^```\n\n[^\n]*prints:\n\n```text\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)(#[^)]*)?\)")


def examples() -> list[object]:
    found = []
    for page in PAGES:
        for number, match in enumerate(FENCE.finditer(page.read_text("utf-8")), 1):
            found.append(pytest.param(page, match.group(1), id=f"{page.name}-{number}"))
    return found


@pytest.mark.parametrize(("page", "code"), examples())
def test_example_runs(
    page: Path, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_routes_yaml(page, tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page.name}:example", "exec"), {"__name__": "__docs__"})


def shown_outputs() -> list[object]:
    found = []
    for page in PAGES:
        for number, match in enumerate(OUTPUT.finditer(page.read_text("utf-8")), 1):
            found.append(pytest.param(page, *match.groups(), id=f"{page.name}-{number}"))
    return found


def test_readme_shows_an_output() -> None:
    assert any(param.values[0].name == "README.md" for param in shown_outputs())  # type: ignore[attr-defined]


@pytest.mark.parametrize(("page", "code", "shown"), shown_outputs())
def test_example_prints_what_the_page_shows(
    page: Path,
    code: str,
    shown: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_routes_yaml(page, tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page.name}:example", "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out == shown


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target, _anchor in LINK.findall(page.read_text("utf-8")):
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_configuration_error_output_is_what_the_page_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = (ROOT / "docs/configuration.md").read_text("utf-8")
    section = page[page.index("## Errors") :]
    code = FENCE.search(section)
    assert code is not None
    exec(compile(code.group(1), "configuration.md", "exec"), {})
    shown = section[section.index("prints\n\n```\n") + len("prints\n\n```\n") :]
    assert capsys.readouterr().out == shown[: shown.index("```")]
