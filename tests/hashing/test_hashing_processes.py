"""Cross-process determinism: a different PYTHONHASHSEED gives identical assignments."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from selectors_lib.hashing import ALGORITHMS, build

SCRIPT = """
import json
from selectors_lib.hashing import ALGORITHMS, build
hosts = ["10.0.0.%d:8080" % i for i in range(23)] + ["h\\u00e9te", "\\U0001f600"]
weights = {h: 1 + i % 3 for i, h in enumerate(hosts)}
out = {}
for a in ALGORITHMS:
    w = None if a == "jump" else weights
    t = build(a, hosts, weights=w)
    keys = ["key-%d" % i for i in range(300)] + ["", "\\udc80"]
    out[a] = [t.lookup(k) for k in keys] + list(t.preference("key-1", 5))
print(json.dumps(out))
"""


def _run(seed: str) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_hashing_assignments_independent_of_hash_seed() -> None:
    a, b = _run("1"), _run("4242")
    assert a == b
    assert sorted(a) == sorted(ALGORITHMS)
    # And the parent process (its own random seed) agrees with both.
    hosts = [f"10.0.0.{i}:8080" for i in range(23)] + ["h\u00e9te", "\U0001f600"]
    t = build("rendezvous", hosts, weights={h: 1 + i % 3 for i, h in enumerate(hosts)})
    assert [t.lookup(f"key-{i}") for i in range(300)] == a["rendezvous"][:300]
