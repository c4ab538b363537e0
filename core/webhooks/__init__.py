"""Webhooks: the events an import's state changes record, and their signed delivery.

- ``events``: the events, written in the transaction of the state change they
  report (an outbox), and the feed's reads.
- ``endpoints``: a tenant's endpoints (add, list, remove, rotate).
- ``deliveries``: one delivery attempt, its retry schedule, redeliver.
- ``signing``: Standard Webhooks signatures. ``http``: the receiver's address
  checked (SSRF), the signed POST, the answer capped.
"""
