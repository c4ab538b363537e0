"""Actor options that come from the settings, applied as each actor is declared.

The actors' decorators hold only what never changes (queues, the actor to
call when retries run out); retry counts and backoffs are the operator's
(``ROW_MAX_RETRIES``, ``INVITE_MIN_BACKOFF_MS``, ...), so the actors module
reads no settings when imported and runs unchanged on a test's broker.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from core.settings import Settings


def actor_options(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings-driven options of each actor, by actor name."""
    return {
        "upsert_row": {
            "max_retries": settings.row_max_retries,
            "min_backoff": settings.row_min_backoff_ms,
        },
        "send_invite": {
            "max_retries": settings.invite_max_retries,
            "min_backoff": settings.invite_min_backoff_ms,
        },
    }


class ActorSettings(Middleware):
    """Sets each declared actor's settings-driven options (see ``actor_options``)."""

    def __init__(self, settings: Settings) -> None:
        self.options = actor_options(settings)

    def after_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
        """Apply the options for ``actor``, if any."""
        actor.options.update(self.options.get(actor.actor_name, {}))
