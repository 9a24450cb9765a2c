"""schemathesis against a live ``lre-bridge serve`` on loopback: every documented operation, all
phases (examples, coverage, fuzzing, stateful), with an API key; no server error."""

from __future__ import annotations

import json
import os
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
            # CPython 3.11's ast.parse can fail inside hypothesis while it names a lambda ("AST
            # constructor recursion depth mismatch"): an error of the tool, not a finding about the
            # bridge. Such a run (and only such a run) is tried once more; a check failure never is.
            if TOOL_CRASH not in completed.stdout:
                break
    # On failure, show the failures and errors sections too (they come before the summary).
    summary = completed.stdout[completed.stdout.find("FAILURES") if "FAILURES" in completed.stdout else
                               completed.stdout.find("ERRORS") if "ERRORS" in completed.stdout else
                               completed.stdout.find("SUMMARY"):][-12000:]
    assert "Server error" not in completed.stdout, summary
    assert completed.returncode == 0, summary or completed.stderr[-3000:]
    run = json.loads(next(report.glob("*.json")).read_text())
    assert run, "schemathesis wrote no report"


def test_every_paginated_operation_is_exempted_for_cursors_it_never_issued(client):
    """An operation that takes ``cursor`` refuses one it did not write (400 invalid_cursor): each
    must be in the exemption, or schemathesis fails the run the day it draws a random cursor."""
    import re
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
