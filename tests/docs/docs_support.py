"""Helpers shared by the docs tests."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUTES_YAML = re.compile(r"^```yaml\n(# routes\.yaml\n.*?)^```", re.S | re.M)


def write_routes_yaml(page: Path, directory: Path) -> None:
    """Give a page's examples the ``routes.yaml`` it shows, or the bundled example."""
    shown = ROUTES_YAML.search(page.read_text("utf-8"))
    if shown is None:
        shutil.copy(ROOT / "src/selectors_lib/examples/netflix.yaml", directory / "routes.yaml")
    else:
        (directory / "routes.yaml").write_text(shown.group(1), "utf-8")
