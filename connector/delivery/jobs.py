"""The table of every outbox job kind: what it does and which module handles it.

A worker imports the handling modules listed here (their ``@outbox.job_handler`` registers each
handler), and ``tests/test_layout.py`` checks that the kinds registered are exactly the kinds in
this table, so no handler is known only by an import somewhere else.
"""

from __future__ import annotations

import importlib

# kind -> (the module that handles it, what it does)
JOBS: dict[str, tuple[str, str]] = {
    "submit_letter": ("connector.letters.lifecycle", "send a queued letter to its provider (exactly once)"),
    "poll_letter": ("connector.letters.lifecycle", "read a letter's status and proofs at its provider"),
    "deliver_webhook": ("connector.delivery.hook_delivery", "send one event to one webhook subscription, signed"),
    "alert_email": ("connector.monitoring.alerts", "e-mail a raised or resolved alert"),
    "batch_letter": ("connector.batches.jobs", "render and create the letters of a batch's rows"),
    "batch_watch": ("connector.batches.jobs", "follow a batch until every letter is final"),
    "expire_consent_invitation": ("connector.consent.jobs", "expire an unanswered consent invitation"),
    "send_consent_invitation": ("connector.consent.jobs", "e-mail a consent invitation (SMTP configured)"),
    "lock_retention": ("connector.archive.jobs", "raise an ended letter's storage locks to its retention end"),
    "lock_account_retention": ("connector.archive.jobs", "after a retention raise, a lock job per ended letter"),
}

# Last: it wraps the handlers registered before it to time them (the job-duration metrics).
JOB_MODULES = (*dict.fromkeys(module for module, _ in JOBS.values()), "connector.monitoring.metrics")

for _module in JOB_MODULES:
    importlib.import_module(_module)
