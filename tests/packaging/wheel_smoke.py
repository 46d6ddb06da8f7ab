"""Run by ``nox -s build`` with the interpreter of a fresh venv holding only the wheel.

Not a pytest module: it checks that the installed wheel, not a checkout, carries
every public module, the bundled files and complete metadata.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import pathlib
import pkgutil

import selectors_lib

installed = pathlib.Path(selectors_lib.__file__).parent
assert "site-packages" in installed.parts, f"imported from {installed}, not the wheel"

public = [m.name for m in pkgutil.iter_modules([str(installed)]) if not m.name.startswith("_")]
for name in public:
    # The venv has the [yaml] extra only: an integration whose extra is missing
    # must say which one to install.
    try:
        importlib.import_module(f"selectors_lib.{name}")
    except ImportError as missing:
        if "pip install 'selectors-lib[" not in str(missing):
            raise SystemExit(f"selectors_lib.{name}: {missing}") from missing

package = importlib.resources.files("selectors_lib")
for path in ("py.typed", "examples/netflix.yaml", "spinnaker/examples/orca.yml"):
    assert package.joinpath(path).is_file(), f"the wheel lacks {path}"

meta = importlib.metadata.metadata("selectors-lib")
assert meta["Version"] == selectors_lib.__version__, meta["Version"]
assert meta["License-Expression"] == "Apache-2.0", meta["License-Expression"]
assert meta["Author-email"], "no author email"
assert meta.get_all("Project-URL"), "no project URLs"
readme = meta.get_payload()
assert "## Quickstart" in readme, "the long description is not README.md"
assert "](docs/" not in readme, "the published README has links that only work in the repository"
files = [str(f) for f in importlib.metadata.files("selectors-lib") or ()]
assert any(f.endswith("licenses/LICENSE") for f in files), "the wheel lacks LICENSE"

print(f"wheel OK: selectors_lib {selectors_lib.__version__}; checked {', '.join(public)}")
