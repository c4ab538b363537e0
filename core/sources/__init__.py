"""Imports that run themselves: a tenant's sources (SFTP or HTTPS) pulled on a schedule.

- ``locations``: a source's URL checked and split; the address rule its
  servers share with the webhooks' (``core.addresses``).
- ``vault``: the sources' secrets, sealed with Fernet (``SOURCE_SECRET_KEY``).
- ``schedule``: cron in the tenant's timezone, or "every N hours"; the next tick.
- ``store``: add (the host key pinned), list, show, test, pause, resume, remove.
- ``fetched``, ``fetch_sftp``, ``fetch_https``: a file fetched to disk,
  streamed, hashed, within the size limit.
- ``runs``: the runs as read, and asking for one now; ``run``: one attempt
  (fetch, unchanged?, review, import or blocked, retry or failed).
- ``ticks``: exactly one run per tick (a claim in PostgreSQL), and the runs
  whose message was lost; both called by housekeeping.
- ``queries``: the named statements of ``sql/``.
"""
