"""Benchmark: Spinnaker patterns in the Java dialect, next to Python's re and the JDK.

Three ways to run the same pattern on the same value:

- ``java dialect``: ``syntax: java`` (``selectors_lib._javaregex``: Java's
  parser ported, translated to an explicit-class Python ``re`` pattern);
- ``re``: the same pattern read as Python's dialect (only where both read it the
  same way, so the comparison is fair);
- ``JDK``: ``java.util.regex`` itself (``bench/java/RegexBench.java``, compiled
  with ``javac`` here, timed inside the JVM after warm-up); skipped without a JDK.

It prints per pattern the cost of compiling once and of one full match, with
ratios against ``re`` and the JDK. Compilation happens once per config load;
the match cost is per request. Absolute times drift on shared machines: read
the ratios.

Usage: python bench/bench_java_dialect.py [--quick]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

from selectors_lib._javaregex import compile_java, translate

# Typical Spinnaker patterns (application/account/user), then Java-only syntax
# (no re column: Python's re refuses it or reads it otherwise).
CASES: list[tuple[str, str]] = [
    ("big-.*", "big-data-pipeline"),
    ("(api|edge|playback)(-[a-z0-9]+)*", "edge-eu-west-1"),
    ("prod-[a-z]+-[0-9]{2}", "prod-core-42"),
    (r"ci-bot@example\.com|jenkins-.*", "jenkins-deploy-7"),
    ("(?i)deck", "DECK"),
    (r"[a-z_0-9]+@[a-z]+\.com", "someone_1@example.com"),
]
PORTABLE = len(CASES)
CASES += [
    (r"\w+@[a-z]+\.com", "someone_1@example.com"),
    (r"\p{Alpha}+-\d+", "alpha-123"),
    (r"\bprod\b.*", "prod eu"),
]


def best(fn: object, rounds: int) -> float:
    """Best per-call time (ns) over 5 runs of ``rounds`` calls."""
    assert callable(fn)
    times = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(rounds):
            fn()
        times.append((time.perf_counter_ns() - start) / rounds)
    return min(times)


def jdk_figures(rounds: int) -> list[tuple[float, float]] | None:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        print("JDK peer skipped: no javac/java on PATH")
        return None
    source = pathlib.Path(__file__).parent / "java" / "RegexBench.java"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([javac, "-d", tmp, str(source)], check=True)
        # Enough calls for the JIT to settle, even in a quick run.
        rounds = max(rounds, 20_000)
        lines = "".join(
            p.replace("\\", "\\\\") + "\t" + v.replace("\\", "\\\\") + "\n" for p, v in CASES
        )
        out = subprocess.run(
            [java, "-cp", tmp, "RegexBench", str(rounds)],
            input=lines,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    return [(float(a), float(b)) for a, b in (line.split() for line in out if line)]


def python_figures(pattern: str, value: str, portable: bool, rounds: int) -> list[float]:
    """Compile (ns) and match (ns) costs: the Java dialect, then re (nan if not portable)."""
    # Translation and re.compile are both cached by text: clear both.
    compile_java_ns = best(lambda: (translate.cache_clear(), re.purge(), compile_java(pattern)), 20)
    ours = compile_java(pattern)
    assert ours.fullmatch(value), pattern
    match_java = best(lambda: ours.fullmatch(value), rounds)
    if not portable:
        return [compile_java_ns, float("nan"), match_java, float("nan")]
    compile_re_ns = best(lambda: (re.purge(), re.compile(pattern)), 20)
    native = re.compile(pattern)
    match_re = best(lambda: native.fullmatch(value), rounds)
    return [compile_java_ns, compile_re_ns, match_java, match_re]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    args = parser.parse_args()
    rounds = 200 if args.quick else 5000
    jdk = jdk_figures(rounds)
    print(
        f"{'pattern':<36} {'compile java/re/JDK (us)':>28} {'match java/re/JDK (ns)':>26}"
        f" {'match java÷re':>13} {'java÷JDK':>9}"
    )
    for i, (pattern, value) in enumerate(CASES):
        cj, cr, mj, mr = python_figures(pattern, value, i < PORTABLE, rounds)
        jc, jm = jdk[i] if jdk else (float("nan"), float("nan"))
        print(
            f"{pattern:<36.36} {cj / 1e3:>9.1f}/{cr / 1e3:>7.1f}/{jc / 1e3:>8.1f}"
            f" {mj:>9.0f}/{mr:>6.0f}/{jm:>8.0f} {mj / mr:>13.2f} {mj / jm:>9.2f}"
        )


if __name__ == "__main__":
    main()
