"""Fault injection for crash tests: ``LRE_FAILPOINTS=submit.after_provider`` makes the process
kill itself (SIGKILL, no cleanup) when it reaches that point, so tests can prove that a worker
dying at the worst moment loses nothing and sends nothing twice. Unset in normal operation."""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    """Die here, hard, if the environment asks for it."""
    wanted = os.environ.get("LRE_FAILPOINTS")
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
