"""The OpenAPI 3.1 description of the HTTP API (:mod:`producer.web.api`, :mod:`producer.web.hooks`), served at
``GET /api/openapi.json``. Written by hand: keep it in step with the routes."""

from __future__ import annotations

from typing import Any

from producer.review.changes import CHANGES_PAGE
from producer.review.review import ROW_DETAILS_CAP
from producer.submit import INVITE_OPTIONS, MODES
from worker.vocabulary import BLANK_CELLS, DEFAULT_BLANK_CELLS, DELIVERY_STATES, EVENT_TYPES

_ERROR = {"$ref": "#/components/schemas/Error"}
_CSV_BODY = {
    "required": True,
    "description": (
        "The file itself as the raw body (not multipart), at most API_MAX_UPLOAD_BYTES: CSV, or an "
        "xlsx, ods or xls workbook, told apart by its content whatever the Content-Type."
    ),
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}
        },
        "application/vnd.oasis.opendocument.spreadsheet": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
_ENDPOINT_ID = {"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ENDPOINT_REQUEST = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "events": {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
            "description": "The event types to receive (default: all).",
        },
    },
}
_IMPORT_ID = {"name": "import_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_TENANT = {
    "name": "tenant",
    "in": "query",
    "required": False,
    "description": "Operator tokens only: the tenant to act for. A service token acts for its own tenant.",
    "schema": {"type": "string"},
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"schema": schema or {"type": "object"}}
    return {"description": description, "content": {"application/json": body}}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "A bad request (parameter, mode, blank_cells, send_at, mapping); `error` says how to fix it.",
        401: "Missing, malformed, invalid or revoked token.",
        403: "A service token asked to act for another tenant (`?tenant=`).",
        404: "No such import, endpoint or delivery for this token (another tenant's look the same).",
        409: "The import is not in a state that allows this (e.g. it has already ended).",
        413: "The body is larger than API_MAX_UPLOAD_BYTES.",
        422: "The file cannot be imported at all (unreadable, missing required columns).",
        503: "PostgreSQL or Redis cannot be reached; retry later.",
    }
    return {str(code): _json(meaning[code], _ERROR) for code in (401, *codes)}


_SHEET = _query(
    "sheet", "A workbook's sheet to read (default: the first whose header matches).", {"type": "string"}
)
_MODE = _query("mode", "upsert, sync or add-only.", {"type": "string", "enum": list(MODES)})
_BLANK_CELLS = _query(
    "blank_cells",
    "clear (default): a blank cell in a column of the file clears the stored value;"
    " keep: it leaves the stored value as it is (a new person gets the column's default).",
    {"type": "string", "enum": list(BLANK_CELLS), "default": DEFAULT_BLANK_CELLS},
)
_MAPPING = _query(
    "mapping",
    "What columns mean, as a JSON object: a header of the file → a field name (first_name, email, …),"
    ' or null to ignore the column, e.g. {"Given": "first_name", "Notes": null}. Headers compare'
    " ignoring case, accents, spaces and punctuation. An import remembers these choices for the tenant"
    " and applies them to its later files with the same header; the review applies remembered ones"
    " and remembers nothing.",
    {"type": "string", "contentMediaType": "application/json"},
)
_CHANGES_PAGE = [
    _query(
        "changes_offset",
        "Skip this many of the people to update (in file order) in `changes`.",
        {"type": "integer", "minimum": 0, "default": 0},
    ),
    _query(
        "changes_limit",
        f"List at most this many people to update in `changes` (0: none; at most {ROW_DETAILS_CAP}).",
        {"type": "integer", "minimum": 0, "maximum": ROW_DETAILS_CAP, "default": CHANGES_PAGE},
    ),
]
_NULLABLE_TEXT = {"type": ["string", "null"]}
_CHANGE = {
    "type": "object",
    "required": ["field", "header", "old", "new"],
    "description": "A field the import would change: template columns in order, then status, then manager.",
    "properties": {
        "field": {"type": "string", "description": "A template field name, `status` or `manager`."},
        "header": {"type": "string", "description": "The template's header (Status, Manager)."},
        "old": {**_NULLABLE_TEXT, "description": "As stored now (teams by name, manager by e-mail)."},
        "new": {**_NULLABLE_TEXT, "description": "After the import."},
    },
}
_REVIEW = {
    "type": "object",
    "properties": {
        "changes": {
            "type": "object",
            "required": ["total", "offset", "limit", "rows"],
            "properties": {
                "total": {"type": "integer", "description": "People the import would update."},
                "offset": {"type": "integer"},
                "limit": {"type": "integer"},
                "rows": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["row", "email", "name", "changes"],
                        "properties": {
                            "row": {"type": "integer"},
                            "email": {"type": "string"},
                            "name": {"type": "string", "description": "As stored now."},
                            "changes": {"type": "array", "items": _CHANGE},
                        },
                    },
                },
            },
        }
    },
}
_SUBMITTED = {
    "type": "object",
    "required": ["id", "status_url"],
    "properties": {"id": {"type": "integer"}, "status_url": {"type": "string"}},
}

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
                "responses": {"200": _json("The OpenAPI document.")},
            }
        },
        "/api/template.csv": {
            "get": {
                "summary": "The CSV template",
                "parameters": [_query("example", "Add a few example rows.", {"type": "boolean"})],
                "responses": {
                    "200": {"description": "The template.", "content": {"text/csv": {}}},
                    **_errors(),
                },
            }
        },
        "/api/imports/review": {
            "post": {
                "summary": "Review a file: columns, row errors and warnings, preview; changes nothing",
                "parameters": [_MODE, _BLANK_CELLS, _SHEET, _MAPPING, _TENANT, *_CHANGES_PAGE],
                "requestBody": _CSV_BODY,
                "responses": {
                    "200": _json(
                        "The review JSON (as `bulk-import review --json`). `changes` is one page of the "
                        "people the import would update, each with what changes field by field "
                        "(including their manager).",
                        _REVIEW,
                    ),
                    **_errors(400, 403, 413, 422, 503),
                },
            }
        },
        "/api/imports": {
            "post": {
                "summary": "Start an import",
                "parameters": [
                    {**_MODE, "required": True},
                    _BLANK_CELLS,
                    _SHEET,
                    _MAPPING,
                    _query(
                        "invites",
                        "When to send invitations (default none).",
                        {"type": "string", "enum": list(INVITE_OPTIONS)},
                    ),
                    _query(
                        "send_at",
                        "With invites=at: ISO 8601 time; without an offset, the tenant's timezone.",
                        {"type": "string"},
                    ),
                    _query(
                        "allow_mass_deactivation",
                        "Let a sync import deactivate more than the allowed share.",
                        {"type": "boolean"},
                    ),
                    _query(
                        "external_id",
                        "Your own reference for the import (1-255 characters), sent back in its events.",
                        {"type": "string", "maxLength": 255},
                    ),
                    _TENANT,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "The same key for the same tenant returns the same import (200).",
                        "schema": {"type": "string", "maxLength": 255},
                    },
                ],
                "requestBody": _CSV_BODY,
                "responses": {
                    "202": _json("Recorded; started, or queued behind the tenant's current one.", _SUBMITTED),
                    "200": _json("An import with this Idempotency-Key already exists: its id.", _SUBMITTED),
                    **_errors(400, 403, 413, 422, 503),
                },
            },
            "get": {
                "summary": "Imports, newest first (a service token: its tenant's; an operator: everyone's)",
                "parameters": [
                    _query("limit", "At most this many (1-1000, default 50).", {"type": "integer"}),
                    _query("before", "Only ids below this one (the next page).", {"type": "integer"}),
                    _TENANT,
                ],
                "responses": {
                    "200": _json(
                        "`imports` (id, tenant, mode, state, rows, times, status_url) and `next` (or null).",
                    ),
                    **_errors(400, 403),
                },
            },
        },
        "/api/imports/{import_id}": {
            "get": {
                "summary": "An import's status: state and counts (as `bulk-import status --json`)",
                "parameters": [_IMPORT_ID],
                "responses": {"200": _json("The status JSON."), **_errors(404)},
            }
        },
        "/api/imports/{import_id}/errors.csv": {
            "get": {
                "summary": "The rows that were rejected or failed, with their original cells and a reason",
                "parameters": [_IMPORT_ID],
                "responses": {"200": {"description": "CSV.", "content": {"text/csv": {}}}, **_errors(404)},
            }
        },
        "/api/imports/{import_id}/cancel": {
            "post": {
                "summary": "Cancel an unfinished import (its pending rows are not applied, no sweep runs)",
                "parameters": [_IMPORT_ID],
                "responses": {
                    "200": _json("`id`, `message` (what happened), `status_url`."),
                    **_errors(404, 409, 503),
                },
            }
        },
        "/api/webhooks": {
            "post": {
                "summary": "Register a webhook endpoint (https://, a public address) for the tenant",
                "parameters": [_TENANT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ENDPOINT_REQUEST}},
                },
                "responses": {
                    "201": _json("The endpoint, with its signing `secret` (whsec_...): shown this once."),
                    **_errors(400, 403),
                },
            },
            "get": {
                "summary": "The tenant's endpoints, with their deliveries' counts (never their secrets)",
                "parameters": [_TENANT],
                "responses": {"200": _json("`webhooks`: the endpoints."), **_errors(403)},
            },
        },
        "/api/webhooks/{endpoint_id}": {
            "delete": {
                "summary": "Remove an endpoint (its deliveries with it; its events stay in the feed)",
                "parameters": [_ENDPOINT_ID, _TENANT],
                "responses": {"200": _json("`id`, `removed`."), **_errors(403, 404)},
            }
        },
        "/api/webhooks/{endpoint_id}/rotate": {
            "post": {
                "summary": "A new signing secret; the old one also signs for WEBHOOK_ROTATION_GRACE_S",
                "parameters": [_ENDPOINT_ID, _TENANT],
                "responses": {
                    "200": _json("`id`, the new `secret`, `previous_secret_valid_s`."),
                    **_errors(404),
                },
            }
        },
        "/api/webhooks/deliveries": {
            "get": {
                "summary": "The tenant's latest deliveries, newest first (with their last error)",
                "parameters": [
                    _query(
                        "state",
                        "pending, delivered or dead.",
                        {"type": "string", "enum": list(DELIVERY_STATES)},
                    ),
                    _query("limit", "At most this many (1-1000, default 50).", {"type": "integer"}),
                    _TENANT,
                ],
                "responses": {"200": _json("`deliveries`."), **_errors(400, 403)},
            }
        },
        "/api/webhooks/deliveries/{delivery_id}/redeliver": {
            "post": {
                "summary": "Attempt a dead or failing delivery again now, with its retries afresh",
                "parameters": [
                    {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    _TENANT,
                ],
                "responses": {"200": _json("`id`, `message`."), **_errors(400, 404)},
            }
        },
        "/api/events": {
            "get": {
                "summary": "The tenant's events in order, from a cursor: catch up without webhooks",
                "parameters": [
                    _query(
                        "after",
                        "The `next_cursor` of the previous page (0: from the first).",
                        {"type": "string"},
                    ),
                    _query("limit", "At most this many (1-1000, default 100).", {"type": "integer"}),
                    _TENANT,
                ],
                "responses": {
                    "200": _json("`events` (each as a webhook's body), `next_cursor`, `more`."),
                    **_errors(400, 403),
                },
            }
        },
    },
}
