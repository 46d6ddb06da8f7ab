"""The hostile-input corpus of issue #12: every case is a ConfigError with a path.

Each file below is written to disk and read the way a user's file is (the CLI,
``load_config`` or the Spinnaker readers over ``read_source``). Each must give a
``ConfigError`` whose issue sits at the expected path and says what is wrong,
in bounded time (a reader thread that does not return fails the test) and
bounded memory (traced allocations). Unhealthy Redis replies are the other half
of the corpus, in ``tests/health/test_health_redis_hostile.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from selectors_lib import ConfigError, load_config
from selectors_lib import spinnaker as sp
from selectors_lib._config import read_source
from selectors_lib._source import MAX_SOURCE_BYTES

ROOT = Path(__file__).resolve().parents[2]
HUGE = "0x" + "f" * 4000  # YAML reads it as an integer of 16,000 bits
APP_SELECTOR = "com.netflix.spinnaker.kork.web.selector.ByApplicationServiceSelector"
USER_SELECTOR = "com.netflix.spinnaker.kork.web.selector.ByAuthenticatedUserServiceSelector"
MEMORY_CAP = 64 * 1024 * 1024  # traced peak while reading one hostile file


def bounded(call: Callable[[], Any], timeout: float = 30.0) -> BaseException:
    """Run ``call`` in a thread; return what it raised. Fails if it hangs or returns."""
    raised: list[BaseException] = []

    def target() -> None:
        tracemalloc.start()
        try:
            call()
        except BaseException as exc:
            raised.append(exc)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if peak > MEMORY_CAP:
                raised.append(MemoryError(f"traced peak {peak:,} bytes"))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"still running after {timeout:g}s")
    if not raised:
        pytest.fail("no error raised")
    if isinstance(raised[-1], MemoryError):
        pytest.fail(str(raised[-1]))
    return raised[0]


def config_error(call: Callable[[], Any]) -> ConfigError:
    error = bounded(call)
    if not isinstance(error, ConfigError):
        raise error
    return error


def issue_at(error: ConfigError, path: str, words: str) -> None:
    found = [i for i in error.issues if i.path == path]
    assert found, f"no issue at {path!r}: {error}"
    assert any(words in i.message for i in found), f"{words!r} not in {found}"


def native(tail: str) -> str:
    """A YAML configuration whose one default route is followed by ``tail``."""
    return (
        "endpoints:\n  a: http://a.test\n  b: http://b.test\n"
        "routes:\n- name: main\n  default: true\n  target: {endpoints: [a, b]}\n" + tail
    )


# -- huge integer keys -------------------------------------------------------------------

NATIVE_HUGE_KEYS = {
    "endpoint id": (
        f"endpoints:\n  ? {HUGE}\n  : http://x.test\n"
        "routes:\n- {name: d, default: true, target: {endpoints: [{url: 'http://y.test'}]}}\n",
        "endpoints",
    ),
    "route key": (
        f"routes:\n- name: d\n  default: true\n  target: {{endpoints: [{{url: 'http://y.test'}}]}}\n  ? {HUGE}\n  : 1\n",
        "routes[0]",
    ),
    "target option": (
        "endpoints: {a: 'http://a.test', b: 'http://b.test'}\n"
        "routes:\n- name: d\n  default: true\n  target:\n    endpoints: [a, b]\n"
        f"    options:\n      ? {HUGE}\n      : 3\n",
        "routes[0].target.options",
    ),
    "match attribute": (
        native(f"- name: m\n  target: a\n  match:\n    attributes:\n      ? {HUGE}\n      : x\n"),
        "routes[1].match.attributes",
    ),
    "health probe key": (
        native(f"health:\n  probes:\n  - type: http\n    endpoints: [a]\n    ? {HUGE}\n    : 1\n"),
        "health.probes[0]",
    ),
}


@pytest.mark.parametrize("case", sorted(NATIVE_HUGE_KEYS))
def test_huge_integer_keys_in_native_configs(tmp_path: Path, case: str) -> None:
    text, path = NATIVE_HUGE_KEYS[case]
    file = tmp_path / "routes.yaml"
    file.write_text(text)
    error = config_error(lambda: load_config(file))
    issue_at(error, path, "<an integer of 16000 bits>")


SPINNAKER_HUGE_KEYS: dict[str, tuple[str, Callable[[Any], Any], str, str]] = {
    "orca baseUrls index (_spring.as_list)": (
        f"clouddriver:\n  readonly:\n    baseUrls:\n      ? {HUGE}\n      : {{baseUrl: 'http://a.test'}}\n",
        sp.from_orca_config,
        "clouddriver.readonly.baseUrls",
        "<an integer of 16000 bits>",
    ),
    "gate dynamic endpoint (_shapes._dynamic)": (
        "services:\n  clouddriver:\n    baseUrl: http://a.test\n    config:\n"
        f"      dynamicEndpoints:\n        ? {HUGE}\n        : http://b.test\n",
        sp.from_gate_config,
        "services.clouddriver.config.dynamicEndpoints.<an integer of 16000 bits>",
        "origin must be a string",
    ),
    "entry key (_service._entry)": (
        f"- baseUrl: http://a.test\n  ? {HUGE}\n  : 1\n",
        sp.selectable_service,
        "baseUrls[0]",
        "a key cannot be <an integer of 16000 bits>",
    ),
    "selector config key (_selectors.parse_selector)": (
        f"- baseUrl: http://a.test\n  priority: 2\n  config:\n    selectorClass: {APP_SELECTOR}\n"
        f"    applicationPattern: a.*\n    ? {HUGE}\n    : x\n- baseUrl: http://b.test\n",
        sp.selectable_service,
        "baseUrls[0].config",
        "a key cannot be <an integer of 16000 bits>",
    ),
    "free-form list key (_spring._spring_key)": (
        f"- baseUrl: http://a.test\n  priority: 2\n  config:\n    selectorClass: {USER_SELECTOR}\n"
        f"    users:\n      ? {HUGE}\n      : x\n- baseUrl: http://b.test\n",
        sp.selectable_service,
        "baseUrls[0].config.users",
        "a key cannot be <an integer of 16000 bits>",
    ),
}


@pytest.mark.parametrize("case", sorted(SPINNAKER_HUGE_KEYS))
def test_huge_integer_keys_in_spinnaker_configs(tmp_path: Path, case: str) -> None:
    text, reader, path, words = SPINNAKER_HUGE_KEYS[case]
    file = tmp_path / "spinnaker.yml"
    file.write_text(text)
    error = config_error(lambda: reader(read_source(file)))
    issue_at(error, path, words)


def test_huge_integer_key_from_the_cli_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    file = tmp_path / "routes.yaml"
    file.write_text(NATIVE_HUGE_KEYS["target option"][0])
    result = subprocess.run(
        [sys.executable, "-m", "selectors_lib", "validate", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 1
    assert "routes[0].target.options: option names must be strings" in result.stderr
    assert "Traceback" not in result.stderr


# -- lone surrogates ---------------------------------------------------------------------

SURROGATES = {
    "endpoint id": (
        '{"endpoints": {"a\\ud800": "http://a.test"},'
        ' "routes": [{"name": "d", "default": true, "target": {"endpoints": [{"url": "http://b.test"}]}}]}',
        'endpoints."a\\ud800"',
    ),
    "rule name": (
        '{"routes": [{"name": "d\\udc00", "default": true, "target": {"endpoints": [{"url": "http://b.test"}]}}]}',
        "routes[0].name",
    ),
    "endpoint url": (
        '{"endpoints": {"a": "http://a.test/\\ud800"},'
        ' "routes": [{"name": "d", "default": true, "target": "a"}]}',
        "endpoints.a",
    ),
    "inline endpoint id": (
        '{"routes": [{"name": "d", "default": true,'
        ' "target": {"endpoints": [{"id": "x\\udfff", "url": "http://b.test"}]}}]}',
        "routes[0].target.endpoints[0].id",
    ),
}


@pytest.mark.parametrize("case", sorted(SURROGATES))
def test_lone_surrogates_never_reach_a_header_or_label(tmp_path: Path, case: str) -> None:
    text, path = SURROGATES[case]
    file = tmp_path / "routes.json"
    file.write_text(text)
    error = config_error(lambda: load_config(file))
    issue_at(error, path, "lone surrogate")
    assert len(error.issues) == 1, error  # no cascade


def test_lone_surrogate_in_a_spinnaker_url(tmp_path: Path) -> None:
    file = tmp_path / "base-urls.json"
    file.write_text('[{"baseUrl": "http://a.test/\\ud800"}]')
    error = config_error(lambda: sp.selectable_service(read_source(file)))
    issue_at(error, "baseUrls[0].baseUrl", "lone surrogate")


def test_lone_surrogate_in_a_gate_origin(tmp_path: Path) -> None:
    file = tmp_path / "gate.json"
    file.write_text(
        '{"services": {"clouddriver": {"baseUrl": "http://a.test",'
        ' "config": {"dynamicEndpoints": {"de\\ud800ck": "http://b.test"}}}}}'
    )
    error = config_error(lambda: sp.from_gate_config(read_source(file)))
    issue_at(error, "services.clouddriver.config.dynamicEndpoints.de\ud800ck", "lone surrogate")


# -- what read_source reads --------------------------------------------------------------


def test_dev_zero_is_refused(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    link = tmp_path / "routes.yaml"
    link.symlink_to("/dev/zero")
    error = config_error(lambda: load_config(link))
    issue_at(error, "", "not a regular file (a character device)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "routes.json"
    os.mkfifo(fifo)
    error = config_error(lambda: load_config(fifo))
    issue_at(error, "", "not a regular file (a FIFO)")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "routes.toml").mkdir()
    error = config_error(lambda: load_config(tmp_path / "routes.toml"))
    issue_at(error, "", "cannot read file")


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "routes.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_SOURCE_BYTES + 1)  # sparse: no disk, and never read
    error = config_error(lambda: load_config(big))
    issue_at(error, "", f"larger than {MAX_SOURCE_BYTES:,} bytes")


# -- duplicate keys ----------------------------------------------------------------------

DUPLICATES = {
    "routes.json": (
        '{"endpoints": {"a": "http://a.test",\n "a": "http://evil.test"},\n'
        ' "routes": [{"name": "d", "default": true, "target": "a"}]}',
        "duplicate key 'a': its value at line 2, column 7, first given at line 1, column 21",
    ),
    "routes.yaml": (
        "endpoints:\n  a: http://a.test\n  a: http://evil.test\n"
        "routes:\n- {name: d, default: true, target: a}\n",
        "duplicate key 'a' at line 3, column 3, first given at line 2, column 3",
    ),
    "nested.yaml": (
        native("- name: m\n  target: a\n  match: {application: {equals: x}, application: y}\n"),
        "duplicate key 'application' at line 10, column 37, first given at line 10, column 11",
    ),
}


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_duplicate_keys_name_both_positions(tmp_path: Path, name: str) -> None:
    text, message = DUPLICATES[name]
    file = tmp_path / name
    file.write_text(text)
    error = config_error(lambda: load_config(file))
    issue_at(error, "", message)


def test_duplicate_keys_are_refused_by_the_libyaml_loader_too() -> None:
    yaml = pytest.importorskip("yaml")
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    from selectors_lib._source import DuplicateKeyError, unique_keys_loader

    for base in (yaml.SafeLoader, yaml.CSafeLoader):
        with pytest.raises(DuplicateKeyError, match="line 2, column 1"):
            yaml.load("a: 1\na: 2\n", Loader=unique_keys_loader(base))
        # A merge key may be overridden: that is what it is for.
        merged = yaml.load("b: &b {a: 1}\nc:\n  <<: *b\n  a: 2\n", Loader=unique_keys_loader(base))
        assert merged["c"] == {"a": 2}


# -- messages ----------------------------------------------------------------------------


def test_host_port_without_a_scheme_is_one_error(tmp_path: Path) -> None:
    file = tmp_path / "routes.yaml"
    file.write_text(
        "endpoints: {ro-1: 'http://ro-1.internal:7002', ro-2: 'ro-2.internal:7002'}\n"
        "routes:\n- {name: d, default: true, target: {endpoints: [ro-1, ro-2]}}\n"
    )
    error = config_error(lambda: load_config(file))
    assert [(i.path, i.message) for i in error.issues] == [
        (
            "endpoints.ro-2",
            "invalid URL 'ro-2.internal:7002': missing scheme: write http://ro-2.internal:7002",
        )
    ]


def test_a_url_given_as_target_says_so() -> None:
    error = config_error(
        lambda: load_config({"routes": [{"name": "d", "default": True, "target": "http://x"}]})
    )
    issue_at(error, "routes[0].target.endpoints[0]", "is a URL where an endpoint id belongs")


def test_a_second_default_is_reported_when_the_first_is_invalid() -> None:
    data = {
        "endpoints": {"a": "http://a.test"},
        "routes": [
            {"name": "d", "default": True, "target": "nope"},
            {"name": "e", "default": True, "target": "a"},
        ],
    }
    error = config_error(lambda: load_config(data))
    issue_at(error, "routes[0].target.endpoints[0]", "unknown endpoint 'nope'")
    issue_at(error, "routes[1].default", "a second default route ('e')")


def test_a_misspelled_spinnaker_key_is_named_with_the_nearest_valid_one() -> None:
    entries = [
        {
            "baseUrl": "http://a.test",
            "priority": 2,
            "config": {"selectorClass": APP_SELECTOR, "applicationPatern": "a.*"},
        },
        {"baseUrl": "http://b.test"},
    ]
    error = config_error(lambda: sp.selectable_service(entries))
    issue_at(
        error,
        "baseUrls[0].config.applicationPatern",
        "unknown key 'applicationPatern' for ByApplicationServiceSelector; "
        "did you mean 'applicationPattern'?",
    )


def test_a_misspelled_native_key_gets_a_suggestion() -> None:
    data = {"routes": [{"name": "d", "default": True, "taget": "a"}]}
    error = config_error(lambda: load_config(data))
    issue_at(error, "routes[0].taget", "(did you mean 'target'?)")


def test_yaml_syntax_errors_keep_the_pointer_line(tmp_path: Path) -> None:
    file = tmp_path / "routes.yaml"
    file.write_text("endpoints:\n  a: http://a.test\n b: oops\nroutes: []\n")
    error = config_error(lambda: load_config(file))
    (issue,) = error.issues
    lines = issue.message.splitlines()
    pointed = [i for i, line in enumerate(lines) if line.strip() == "^"]
    assert pointed, issue.message
    # The ^ sits under the spot on the line above it: column 2 of " b: oops".
    above = lines[pointed[-1] - 1]
    assert above.strip() == "b: oops"
    assert lines[pointed[-1]].index("^") == above.index("b")


@pytest.mark.parametrize(
    ("pattern", "family"),
    [
        ("(a|a)*b", "repeats an alternation whose branches overlap"),
        ("(.*a){12}b", "repeats a wildcard 12 times"),
        ("(a+)+b", "nests quantifiers"),
    ],
)
def test_backtracking_patterns_are_warned_about(pattern: str, family: str) -> None:
    config = load_config(
        {
            "endpoints": {"a": "http://a.test"},
            "routes": [
                {"name": "r", "match": {"application": {"regex": pattern}}, "target": "a"},
                {"name": "d", "default": True, "target": "a"},
            ],
        }
    )
    (warning,) = config.warnings
    assert warning.path == "routes[0].match.application.regex"
    assert family in warning.message
    assert "only RE2 bounds every pattern's time" in warning.message
