"""Tells the actors that run when retries are exhausted whether the last error was transient.

dramatiq's ``Retries`` hands a message whose retries ran out to the actor
named by ``on_retry_exhausted`` (``row_gave_up``, ``import_gave_up``) as a
dict, with its traceback but not its exception. ``TransientErrors`` records
``core.errors.is_transient`` of each failure in the message's options
first, so the gave-up actor can leave work that failed only because
PostgreSQL was away pending instead of recording it as failed.

It must run before ``Retries``: dramatiq 2.2.1's ``Broker.emit_after`` calls
the middleware in reverse order, so it is declared *after* ``Retries`` in the
stack (``worker.broker`` puts the worker's middleware after
``core.queues.base_middleware``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from core.errors import is_transient

# The message option it records (kept when Retries re-enqueues the message).
TRANSIENT_OPTION = "transient_error"


class TransientErrors(Middleware):
    """Records whether a failed message's error was transient, for ``Retries`` to pass on."""

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Set the message's ``transient_error`` option from its exception, if it failed."""
        if exception is not None:
            message.options[TRANSIENT_OPTION] = is_transient(exception)


def failed_transiently(message: Mapping[str, Any]) -> bool:
    """True when the message (as ``Retries`` hands it on) last failed with a transient error."""
    return bool(message.get("options", {}).get(TRANSIENT_OPTION, False))
