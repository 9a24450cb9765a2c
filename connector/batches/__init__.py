"""Batches: one template (or one PDF) and its common attachments sent to many recipients.

``POST /v1/batches`` validates every row before anything is stored (``rows``), stores the batch,
its attachments (once, by hash) and one item per row with one outbox job each (``service``); the
workers render and create each letter exactly once (``jobs``). The bordereau (``report``) and the
zip of every letter's evidence package (``evidence``) prove who was sent what, and when.
"""
