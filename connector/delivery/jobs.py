"""Imports every module that registers outbox job handlers, so a worker knows them all."""

from __future__ import annotations

import importlib

JOB_MODULES = ("connector.letters.lifecycle", "connector.delivery.hooks", "connector.monitoring.alerts",
               "connector.batches.jobs", "connector.consent.jobs", "connector.archive.jobs",
               # Last: it wraps the handlers registered before it to time them (issue 17).
               "connector.monitoring.metrics")

for _module in JOB_MODULES:
    importlib.import_module(_module)
