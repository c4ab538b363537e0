"""The OpenAPI 3.1 description of the HTTP API (:mod:`producer.web.api`,
:mod:`producer.web.webhooks_api`), served at ``GET /api/openapi.json``. Written by hand: keep
it in step with the routes."""

from __future__ import annotations

from typing import Any

from core.vocabulary import DeliveryState, InviteOption
from producer.web.openapi_parts import (
    BLANK_CELLS_PARAM,
    CHANGES_PAGE_PARAMS,
    CSV_BODY,
    ENDPOINT_ID,
    ENDPOINT_REQUEST,
    IMPORT_ID,
    MAPPING,
    MATCH_BY,
    MODE,
    REVIEW,
    SHEET,
    SUBMITTED,
    TENANT,
    errors,
    json,
    query,
)
from producer.web.openapi_sources import SOURCE_PATHS

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Bulk people import",
        "version": "1",
        "description": "Review and import CSV files of people, poll the imports, fetch their rejected rows.",
    },
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "Made with `bulk-import token create --tenant T` (or `--operator`).",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            }
        },
    },
    "paths": {
        "/api/openapi.json": {
            "get": {
                "summary": "This description (no token needed)",
                "security": [],
                "responses": {"200": json("The OpenAPI document.")},
            }
        },
        "/api/template.csv": {
            "get": {
                "summary": "The CSV template",
                "parameters": [query("example", "Add a few example rows.", {"type": "boolean"})],
                "responses": {
                    "200": {"description": "The template.", "content": {"text/csv": {}}},
                    **errors(),
                },
            }
        },
        "/api/imports/review": {
            "post": {
                "summary": "Review a file: columns, row errors and warnings, preview; changes nothing",
                "parameters": [
                    MODE,
                    BLANK_CELLS_PARAM,
                    MATCH_BY,
                    SHEET,
                    MAPPING,
                    TENANT,
                    *CHANGES_PAGE_PARAMS,
                ],
                "requestBody": CSV_BODY,
                "responses": {
                    "200": json(
                        "The review JSON (as `bulk-import review --json`). `changes` is one page of the "
                        "people the import would update, each with what changes field by field "
                        "(including their manager).",
                        REVIEW,
                    ),
                    **errors(400, 403, 413, 422, 503),
                },
            }
        },
        "/api/imports": {
            "post": {
                "summary": "Start an import",
                "parameters": [
                    {**MODE, "required": True},
                    BLANK_CELLS_PARAM,
                    MATCH_BY,
                    SHEET,
                    MAPPING,
                    query(
                        "invites",
                        "When to send invitations (default none).",
                        {"type": "string", "enum": list(tuple(InviteOption))},
                    ),
                    query(
                        "send_at",
                        "With invites=at: ISO 8601 time; without an offset, the tenant's timezone.",
                        {"type": "string"},
                    ),
                    query(
                        "allow_mass_deactivation",
                        "Let a sync import deactivate more than the allowed share.",
                        {"type": "boolean"},
                    ),
                    query(
                        "external_id",
                        "Your own reference for the import (1-255 characters), sent back in its events.",
                        {"type": "string", "maxLength": 255},
                    ),
                    TENANT,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "The same key for the same tenant returns the same import (200).",
                        "schema": {"type": "string", "maxLength": 255},
                    },
                ],
                "requestBody": CSV_BODY,
                "responses": {
                    "202": json("Recorded; started, or queued behind the tenant's current one.", SUBMITTED),
                    "200": json("An import with this Idempotency-Key already exists: its id.", SUBMITTED),
                    **errors(400, 403, 413, 422, 503),
                },
            },
            "get": {
                "summary": "Imports, newest first (a service token: its tenant's; an operator: everyone's)",
                "parameters": [
                    query("limit", "At most this many (1-1000, default 50).", {"type": "integer"}),
                    query("before", "Only ids below this one (the next page).", {"type": "integer"}),
                    TENANT,
                ],
                "responses": {
                    "200": json(
                        "`imports` (id, tenant, mode, state, rows, times, status_url) and `next` (or null).",
                    ),
                    **errors(400, 403),
                },
            },
        },
        "/api/imports/{import_id}": {
            "get": {
                "summary": "An import's status: state and counts (as `bulk-import status --json`)",
                "parameters": [IMPORT_ID],
                "responses": {"200": json("The status JSON."), **errors(404)},
            }
        },
        "/api/imports/{import_id}/errors.csv": {
            "get": {
                "summary": "The rows that were rejected or failed, with their original cells and a reason",
                "parameters": [IMPORT_ID],
                "responses": {"200": {"description": "CSV.", "content": {"text/csv": {}}}, **errors(404)},
            }
        },
        "/api/imports/{import_id}/cancel": {
            "post": {
                "summary": "Cancel an unfinished import (its pending rows are not applied, no sweep runs)",
                "parameters": [IMPORT_ID],
                "responses": {
                    "200": json("`id`, `message` (what happened), `status_url`."),
                    **errors(404, 409, 503),
                },
            }
        },
        "/api/imports/{import_id}/undo": {
            "post": {
                "summary": "Undo a finished import, or preview the undo (dry_run=true; changes nothing)",
                "description": "Deactivates the people the import created (cancelling their unsent invites), "
                "gives the people it updated the values they had before it, where the stored value is "
                "still the one it wrote, and reactivates the people it swept who are still deactivated "
                "by it. The undo is itself an import (mode `undo`, `undoes`: this import) to poll at "
                "`status_url`; its errors.csv lists what was not restored and why.",
                "parameters": [
                    IMPORT_ID,
                    query(
                        "dry_run",
                        "Only say what the undo would do: counts, and who would not be restored and why.",
                        {"type": "boolean"},
                    ),
                ],
                "responses": {
                    "202": json(
                        "The undo started, or is queued behind the tenant's running import: "
                        "`id`, `message`, `status_url`. With dry_run=true, 200 and the preview: "
                        "`restored`, `deactivated`, `reactivated`, `kept`, `invites_cancelled`, "
                        "`invites_sent`, `values_purged`, `teams_created`, `not_restored` "
                        "(email, row, field, before, written, now, reason), `not_restored_total`."
                    ),
                    "200": json(
                        "An undo of this import is already queued, running or done: that one "
                        "(a second undo does nothing)."
                    ),
                    **errors(404, 409, 503),
                },
            }
        },
        "/api/webhooks": {
            "post": {
                "summary": "Register a webhook endpoint (https://, a public address) for the tenant",
                "parameters": [TENANT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ENDPOINT_REQUEST}},
                },
                "responses": {
                    "201": json("The endpoint, with its signing `secret` (whsec_...): shown this once."),
                    **errors(400, 403),
                },
            },
            "get": {
                "summary": "The tenant's endpoints, with their deliveries' counts (never their secrets)",
                "parameters": [TENANT],
                "responses": {"200": json("`webhooks`: the endpoints."), **errors(403)},
            },
        },
        "/api/webhooks/{endpoint_id}": {
            "delete": {
                "summary": "Remove an endpoint (its deliveries with it; its events stay in the feed)",
                "parameters": [ENDPOINT_ID, TENANT],
                "responses": {"200": json("`id`, `removed`."), **errors(403, 404)},
            }
        },
        "/api/webhooks/{endpoint_id}/rotate": {
            "post": {
                "summary": "A new signing secret; the old one also signs for WEBHOOK_ROTATION_GRACE_S",
                "parameters": [ENDPOINT_ID, TENANT],
                "responses": {
                    "200": json("`id`, the new `secret`, `previous_secret_valid_s`."),
                    **errors(404),
                },
            }
        },
        "/api/webhooks/deliveries": {
            "get": {
                "summary": "The tenant's latest deliveries, newest first (with their last error)",
                "parameters": [
                    query(
                        "state",
                        "pending, delivered or dead.",
                        {"type": "string", "enum": list(tuple(DeliveryState))},
                    ),
                    query("limit", "At most this many (1-1000, default 50).", {"type": "integer"}),
                    TENANT,
                ],
                "responses": {"200": json("`deliveries`."), **errors(400, 403)},
            }
        },
        "/api/webhooks/deliveries/{delivery_id}/redeliver": {
            "post": {
                "summary": "Attempt a dead or failing delivery again now, with its retries afresh",
                "parameters": [
                    {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    TENANT,
                ],
                "responses": {"200": json("`id`, `message`."), **errors(400, 404)},
            }
        },
        "/api/events": {
            "get": {
                "summary": "The tenant's events in order, from a cursor: catch up without webhooks",
                "parameters": [
                    query(
                        "after",
                        "The `next_cursor` of the previous page (0: from the first).",
                        {"type": "string"},
                    ),
                    query("limit", "At most this many (1-1000, default 100).", {"type": "integer"}),
                    TENANT,
                ],
                "responses": {
                    "200": json("`events` (each as a webhook's body), `next_cursor`, `more`."),
                    **errors(400, 403),
                },
            }
        },
    },
}
OPENAPI["paths"] |= SOURCE_PATHS
