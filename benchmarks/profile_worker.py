"""Run ``lre-bridge worker`` with each job profiled, to see where the bridge's own time per letter goes.

cProfile follows only the thread that enabled it, and a worker runs its jobs in pool threads: this
wraps ``outbox.run_job`` so that each thread profiles the jobs it runs, and counts the SQL
statements each job kind executes (a cursor listener). At exit (SIGTERM ends the worker cleanly)
it writes the merged profile to ``LRE_PROFILE_OUT`` (default ``/tmp/lre-worker.prof``) and prints
the statements per job kind to stderr. With ``--concurrency N`` only this process is profiled (its
N - 1 child workers run the plain CLI). ``benchmarks/batch.py --profile`` runs the worker this way.

    .venv/bin/python benchmarks/profile_worker.py worker --concurrency 1
"""

from __future__ import annotations

import atexit
import cProfile
import os
import pstats
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from connector.cli import main  # noqa: E402
from connector.delivery import outbox  # noqa: E402
from connector.models import Job  # noqa: E402
from connector.services import Services  # noqa: E402

_profiles: dict[int, cProfile.Profile] = {}
_current = threading.local()
statements: Counter[str] = Counter()
# (job kind, the statement's start): which statements a kind repeats.
shapes: Counter[tuple[str, str]] = Counter()
runs: Counter[str] = Counter()
_run_job = outbox.run_job


@event.listens_for(Engine, "before_cursor_execute")
def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    kind = getattr(_current, "kind", None) or "(outside a job: claims, wake-ups, leases)"
    statements[kind] += 1
    shapes[(kind, " ".join(statement.split())[:90])] += 1


def run_job(services: Services, job: Job, owner: str) -> str:
    """``outbox.run_job`` under this thread's profiler, its statements counted for its kind."""
    profile = _profiles.setdefault(threading.get_ident(), cProfile.Profile())
    _current.kind = job.kind
    runs[job.kind] += 1
    profile.enable()
    try:
        return _run_job(services, job, owner)
    finally:
        profile.disable()
        _current.kind = None


def _dump() -> None:
    profiles = list(_profiles.values())
    if profiles:
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(os.environ.get("LRE_PROFILE_OUT", "/tmp/lre-worker.prof"))
    for kind, count in sorted(statements.items()):
        print(f"SQL statements, {kind}: {count} in {runs.get(kind, 0)} runs", file=sys.stderr)
        top = sorted(((n, shape) for (k, shape), n in shapes.items() if k == kind), reverse=True)[:12]
        for n, shape in top:
            print(f"  {n:6d}  {shape}", file=sys.stderr)


if __name__ == "__main__":
    outbox.run_job = run_job  # the worker calls it through the module
    atexit.register(_dump)
    sys.argv[0] = "lre-bridge"
    main()
