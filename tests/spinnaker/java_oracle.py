"""The JDK as an oracle: ``tests/spinnaker/java/Oracle.java`` in one long-lived JVM.

``javac`` compiles the program into a temporary directory at test time; every
string crosses the pipe as the hex of its UTF-16 code units, so any character
(line terminators, lone surrogates, astral planes) arrives intact.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Sequence

import pytest

SOURCE = pathlib.Path(__file__).parent / "java" / "Oracle.java"


def _hex(text: str) -> str:
    return text.encode("utf-16-be", "surrogatepass").hex()


def _unhex(data: str) -> str:
    return bytes.fromhex(data).decode("utf-16-be", "surrogatepass")


def require_jdk() -> tuple[str, str]:
    """``javac`` and ``java``, or skip (locally) / fail (under ``CI``) without them."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        message = "no JDK (javac/java) on PATH: the Java-dialect oracle tests need JDK 17"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install one (apt-get install -y openjdk-17-jdk)")
        pytest.skip(message)
    return javac, java


class Oracle:
    """One JVM answering batches of requests."""

    def __init__(self, workdir: pathlib.Path) -> None:
        javac, java = require_jdk()
        subprocess.run(
            [javac, "-d", str(workdir), str(SOURCE)], check=True, capture_output=True, timeout=120
        )
        self._process = subprocess.Popen(
            [java, "-Xss16m", "-cp", str(workdir), "Oracle"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="ascii",
        )

    def _run(self, lines: Sequence[str]) -> list[str]:
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        stdin = process.stdin

        def feed() -> None:
            # A thread writes while this one reads: neither pipe can fill up.
            stdin.write("".join(line + "\n" for line in lines) + "\n")
            stdin.flush()

        writer = threading.Thread(target=feed)
        writer.start()
        answers = [process.stdout.readline().rstrip("\n") for _ in lines]
        writer.join()
        return answers

    def matches(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """``"1"``/``"0"`` per (pattern, value), ``"E"`` when Java refuses the pattern."""
        return self._run([f"M {_hex(p)} {_hex(v)}" for p, v in pairs])

    def lower(self, values: Sequence[str]) -> list[str]:
        """``toLowerCase(Locale.ROOT)`` of each value."""
        return [_unhex(a) for a in self._run([f"L {_hex(v)}" for v in values])]

    def equals_ignore_case(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """``a.equalsIgnoreCase(b)`` per pair."""
        return [a == "1" for a in self._run([f"I {_hex(a)} {_hex(b)}" for a, b in pairs])]

    def close(self) -> None:
        """End the JVM (it exits when its input ends) and close the pipes."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        self._process.stdout.close()
