"""The command line, the web process and the demo: what admins, services and operators use.

The rules of an import (reading a file, the review, recording it, its life
on the workers) live in ``core``; this package is what people and services
reach them through. The folder tells which process runs a module:

- top level, shared by the command line and the web process: ``reports``
  (status, failed rows, export), ``control`` (cancel, resume, undo and its
  preview, send invites, tenants), ``webhooks`` (deliveries as operators see
  them, redeliver, the events feed), ``progress`` (``run --wait``'s bar),
  ``template`` (the CSV template), ``queries`` (the named SQL of ``sql/``:
  admin, reports, undo, web, webhooks). :func:`submit_import` is the Python
  entry point for other services (``core.intake.submit``).
- ``cli/``: the ``bulk-import`` command (``producer.cli:main``), one module
  per family of commands, each loaded only when used.
- ``web/``: the HTTP API, the operators' dashboard and the admins' pages
  (uvicorn's process).
- ``demo/``: ``bulk-import demo``, its generated files and embedded services.
"""

from __future__ import annotations

from core.intake.submit import submit_import

__all__ = ["submit_import"]
