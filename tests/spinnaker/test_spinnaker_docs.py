"""docs/spinnaker.md: its Python runs, and the converted YAML it shows is what the converter gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from selectors_lib.spinnaker import convert_gate, convert_orca

ROOT = Path(__file__).parents[2]
PAGE = (ROOT / "docs" / "spinnaker.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", PAGE, flags=re.DOTALL)
SHOWN = re.findall(r"<!-- converted: (\S+) (\S+) -->\n```yaml\n(.*?)```", PAGE, flags=re.DOTALL)


def test_page_has_what_these_tests_check() -> None:
    assert len(PYTHON) >= 8
    assert [(name, arg) for name, arg, _ in SHOWN] == [
        ("orca.yml", "readonly"),
        ("orca.yml", "writeonly"),
        ("gate.yml", "clouddriver"),
        ("gate.yml", "orca"),
    ]


@pytest.mark.parametrize(("name", "arg", "shown"), SHOWN, ids=[f"{n}-{a}" for n, a, _ in SHOWN])
def test_shown_conversion_is_what_the_converter_produces(name: str, arg: str, shown: str) -> None:
    document = yaml.safe_load((ROOT / "src/selectors_lib/spinnaker/examples" / name).read_text())
    converted = convert_orca(document, arg) if name == "orca.yml" else convert_gate(document, arg)
    assert yaml.safe_load(shown) == converted
    # Same text too, so key order and layout in the page stay honest.
    assert shown.strip() == yaml.safe_dump(converted, sort_keys=False, width=100).strip()


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_snippet_runs(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Anywhere: the snippets read the examples bundled with the package.
    monkeypatch.chdir(tmp_path)
    exec(compile(PYTHON[index], f"docs/spinnaker.md#python-{index}", "exec"), {})
    capsys.readouterr()
