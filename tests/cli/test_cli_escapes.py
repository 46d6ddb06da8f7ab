"""Nothing a configuration or a command line holds reaches the terminal raw."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib.cli import main

# CSI (a C1 control: terminals read it as ESC [), NEL, a bidi override, a tag
# character beyond the BMP, a C0 control and a line separator.
HOSTILE = "k\u009b31m\u0085\u202e\U000e0001\x01\u2028z"

CONFIG = {
    "version": 1,
    "endpoints": {"ro-1": "https://ro-1.example.net", "ro-2": "https://ro-2.example.net"},
    "routes": [
        {"name": "r" + HOSTILE, "match": {"application": HOSTILE}, "target": "ro-2"},
        {"name": "default", "default": True, "target": "ro-1"},
    ],
}


def raw_unsafe(text: str) -> list[str]:
    """Characters of category C, and line/paragraph separators, other than newline."""
    return [
        c
        for c in text
        if c != "\n"
        and (unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp"))
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_explain_json_escapes_every_control_character(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    out = run(
        capsys, "explain", str(path), "--header", f"X-Spinnaker-Application: {HOSTILE}", "--json"
    )
    assert raw_unsafe(out) == []
    assert "\\u009b" in out
    decision = json.loads(out)
    # Escaped, not altered: the JSON still says exactly what was routed on.
    assert decision["rule"] == "r" + HOSTILE
    assert decision["endpoint"]["id"] == "ro-2"


@pytest.mark.parametrize("as_json", [True, False])
def test_dump_escapes_every_control_character_and_loads_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    out = run(capsys, "dump", str(path), *(["--json"] if as_json else []))
    assert raw_unsafe(out) == []
    loaded = json.loads(out) if as_json else yaml.safe_load(out)
    assert loaded["routes"][0]["name"] == "r" + HOSTILE


@settings(max_examples=40)
@given(st.text(max_size=40))
def test_any_rule_name_is_printed_safely(name: str) -> None:
    import io

    from selectors_lib._cli_output import _document

    for as_json in (True, False):
        out = io.StringIO()
        _document({"name": name, "plain": "café 日本"}, as_json=as_json, out=out)
        text = out.getvalue()
        assert raw_unsafe(text) == []
        loaded = json.loads(text) if as_json else yaml.safe_load(text)
        assert loaded == {"name": name, "plain": "café 日本"}
