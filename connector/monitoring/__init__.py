"""Watching the sends: KPIs per account, alert rules and their evaluation, Prometheus metrics."""
