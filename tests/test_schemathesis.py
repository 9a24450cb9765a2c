"""schemathesis against a live ``lre-bridge serve`` on loopback: every documented operation, all
phases (examples, coverage, fuzzing, stateful), with an API key; no server error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import running_bridge

# Bounded for CI: a few examples per operation and a time budget for the whole run.
MAX_EXAMPLES = os.environ.get("LRE_TEST_SCHEMATHESIS_EXAMPLES", "3")
MAX_SECONDS = os.environ.get("LRE_TEST_SCHEMATHESIS_SECONDS", "150")
# Every check schemathesis has. The few answers that are right although a generator cannot tell
# (opaque cursors, rules across fields or stored state, a consent register that keeps revoked
# entries) are listed, operation by operation and with the reason, in tests/schemathesis.toml.
CHECKS = "all"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# HTML pages (the dashboard and the consent pages) are for browsers, not API clients.
EXCLUDED = "^/(dashboard|consent|consent-assets)(/|$)"
TOOL_CRASH = "SystemError: AST constructor recursion depth mismatch"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_failed_check(tmp_path: Path) -> None:
    # The direct URL, not the checking proxy (tests/live_server.py): schemathesis checks every answer
    # against the served document itself, and its malformed requests must reach the bridge as sent.
    with running_bridge(tmp_path / "bridge", "--no-worker") as (base, key):
        for attempt in range(2):
            report = tmp_path / f"report-{attempt}"
            completed = subprocess.run(
                [str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG), "run",
                 f"{base}/openapi.json", "--header", f"Authorization: Bearer {key}", "--checks", CHECKS,
                 "--max-examples", MAX_EXAMPLES, "--max-time", MAX_SECONDS, "--workers", "2",
                 "--request-timeout", "30", "--seed", "12", "--exclude-path-regex", EXCLUDED,
                 "--report", "json", "--report-dir", str(report)],
                capture_output=True, text=True, timeout=int(MAX_SECONDS) + 240,
            )
            # A run that only the tool itself broke is tried once more, and only such a run: a
            # check failure, a server error or a network error never is. CPython 3.11's ast.parse
            # can fail inside hypothesis while it names a lambda ("AST constructor recursion depth
            # mismatch"), and a clean-clone CI run once ended with "Runtime Error: 1" in the
            # coverage phase and no failed check (the bridge answered every request).
            if not tool_error_only(completed.stdout):
                break
    # On failure, show the errors section first (its cause), then the failures and the summary.
    summary = section(completed.stdout, "ERRORS", 6000) + section(completed.stdout, "FAILURES", 6000) \
        + section(completed.stdout, "SUMMARY", 4000)
    assert "Server error" not in completed.stdout, summary
    assert completed.returncode == 0, summary or completed.stderr[-3000:]
    run = json.loads(next(report.glob("*.json")).read_text())
    assert run, "schemathesis wrote no report"


def section(stdout: str, name: str, limit: int) -> str:
    """The part of schemathesis's output from the ``name`` section heading on, at most ``limit``
    characters (empty when the section is not there)."""
    heading = re.search(rf"=+ {name} =+", stdout)
    return stdout[heading.start():heading.start() + limit] + "\n" if heading else ""


def tool_error_only(stdout: str) -> bool:
    """Whether the run's only problems are errors of the tool itself: no failed check, no server
    error, and every error counted in the summary a "Runtime Error" (schemathesis's name for an
    exception it raised, as opposed to a network error, a schema error or an unhealthy API)."""
    if TOOL_CRASH in stdout:
        return True
    summary = stdout[stdout.rfind("SUMMARY"):]
    if "Failures:" in summary or "Server error" in stdout or "Errors:" not in summary:
        return False
    titles = re.findall(r"🚫 ([^:\n]+): \d+", summary[summary.find("Errors:"):])
    return bool(titles) and all(title == "Runtime Error" for title in titles)


def test_a_run_broken_only_by_the_tool_is_told_from_one_with_findings() -> None:
    """The retry above is kept to the tool's own errors (summaries as schemathesis prints them)."""
    tool = "=== SUMMARY ===\nErrors:\n  🚫 Runtime Error: 1\n"
    assert tool_error_only(tool)
    assert tool_error_only("Traceback ... " + TOOL_CRASH)
    assert not tool_error_only("=== SUMMARY ===\nFailures:\n  ❌ Server error: 1\nErrors:\n  🚫 Runtime Error: 1\n")
    assert not tool_error_only("=== SUMMARY ===\nErrors:\n  🚫 Runtime Error: 1\n  🚫 Network Error: 2\n")
    assert not tool_error_only("=== SUMMARY ===\nTest cases:\n  10 generated, 10 passed\n")
    assert section("x\n===== ERRORS =====\nboom\n", "ERRORS", 100).startswith("===== ERRORS")
    assert section("nothing", "ERRORS", 100) == ""


def test_every_paginated_operation_is_exempted_for_cursors_it_never_issued(client):
    """An operation that takes ``cursor`` refuses one it did not write (400 invalid_cursor): each
    must be in the exemption, or schemathesis fails the run the day it draws a random cursor."""
    import tomllib

    rules = tomllib.loads((Path(__file__).parent / "schemathesis.toml").read_text())["operations"]
    # The first rule of the file: the cursor exemption.
    cursor_rule = rules[0]
    assert 400 in cursor_rule["checks"]["positive_data_acceptance"]["expected-statuses"]
    document = client.get("/openapi.json").json
    paginated = [f"{method.upper()} {path}" for path, item in document["paths"].items()
                 for method, operation in item.items() if isinstance(operation, dict)
                 and any(p.get("name") == "cursor" for p in operation.get("parameters", []))]
    assert paginated
    missing = [name for name in paginated if not re.match(cursor_rule["include-name-regex"], name)]
    assert not missing, f"add to the cursor exemption in tests/schemathesis.toml: {missing}"
