"""The building blocks of the OpenAPI description (:mod:`producer.web.openapi`): parameters,
request bodies, response and error schemas shared by its paths."""

from __future__ import annotations

from typing import Any

from core.intake.review.changes import CHANGES_PAGE
from core.intake.review.review import ROW_DETAILS_CAP
from core.vocabulary import DEFAULT_BLANK_CELLS, FILE_MODES, BlankCells, EventType, MatchKey

ERROR = {"$ref": "#/components/schemas/Error"}
CSV_BODY = {
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
ENDPOINT_ID = {"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "integer"}}
ENDPOINT_REQUEST = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "events": {
            "type": "array",
            "items": {"type": "string", "enum": list(tuple(EventType))},
            "description": "The event types to receive (default: all).",
        },
    },
}
IMPORT_ID = {"name": "import_id", "in": "path", "required": True, "schema": {"type": "integer"}}
TENANT = {
    "name": "tenant",
    "in": "query",
    "required": False,
    "description": "Operator tokens only: the tenant to act for. A service token acts for its own tenant.",
    "schema": {"type": "string"},
}


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"schema": schema or {"type": "object"}}
    return {"description": description, "content": {"application/json": body}}


def errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "A bad request (parameter, mode, blank_cells, match_by, send_at, mapping); `error` says how.",
        401: "Missing, malformed, invalid or revoked token.",
        403: "A service token asked to act for another tenant (`?tenant=`).",
        404: "No such import, endpoint or delivery for this token (another tenant's look the same).",
        409: "The import is not in a state that allows this (e.g. it has already ended).",
        413: "The body is larger than API_MAX_UPLOAD_BYTES.",
        422: "The file cannot be imported at all (unreadable, missing required columns).",
        503: "PostgreSQL or Redis cannot be reached; retry later.",
    }
    return {str(code): json(meaning[code], ERROR) for code in (401, *codes)}


SHEET = query(
    "sheet", "A workbook's sheet to read (default: the first whose header matches).", {"type": "string"}
)
MODE = query("mode", "upsert, sync or add-only.", {"type": "string", "enum": list(FILE_MODES)})
BLANK_CELLS_PARAM = query(
    "blank_cells",
    "clear (default): a blank cell in a column of the file clears the stored value;"
    " keep: it leaves the stored value as it is (a new person gets the column's default).",
    {"type": "string", "enum": list(tuple(BlankCells)), "default": DEFAULT_BLANK_CELLS},
)
MATCH_BY = query(
    "match_by",
    "How a row finds the stored person it is: email (the person at a Previous email column's address,"
    " else at the row's) or employee-id (the person with the row's Employee ID: another address is a"
    " rename; a new id adopts the person at the row's address who has none). Default: the key the"
    " tenant's last import was given, else email; an import remembers it for the tenant.",
    {"type": "string", "enum": list(tuple(MatchKey))},
)
MAPPING = query(
    "mapping",
    "What columns mean, as a JSON object: a header of the file → a field name (first_name, email, …),"
    ' or null to ignore the column, e.g. {"Given": "first_name", "Notes": null}. Headers compare'
    " ignoring case, accents, spaces and punctuation. An import remembers these choices for the tenant"
    " and applies them to its later files with the same header; the review applies remembered ones"
    " and remembers nothing.",
    {"type": "string", "contentMediaType": "application/json"},
)
CHANGES_PAGE_PARAMS = [
    query(
        "changes_offset",
        "Skip this many of the people to update (in file order) in `changes`.",
        {"type": "integer", "minimum": 0, "default": 0},
    ),
    query(
        "changes_limit",
        f"List at most this many people to update in `changes` (0: none; at most {ROW_DETAILS_CAP}).",
        {"type": "integer", "minimum": 0, "maximum": ROW_DETAILS_CAP, "default": CHANGES_PAGE},
    ),
]
NULLABLE_TEXT = {"type": ["string", "null"]}
CHANGE = {
    "type": "object",
    "required": ["field", "header", "old", "new"],
    "description": "A field the import would change: template columns in order (email for a rename),"
    " then status, then manager (only when another person manages them).",
    "properties": {
        "field": {"type": "string", "description": "A template field name, `status` or `manager`."},
        "header": {"type": "string", "description": "The template's header (Status, Manager)."},
        "old": {**NULLABLE_TEXT, "description": "As stored now (teams by name, manager by e-mail)."},
        "new": {**NULLABLE_TEXT, "description": "After the import."},
    },
}
REVIEW = {
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
                            "changes": {"type": "array", "items": CHANGE},
                        },
                    },
                },
            },
        }
    },
}
SUBMITTED = {
    "type": "object",
    "required": ["id", "status_url"],
    "properties": {"id": {"type": "integer"}, "status_url": {"type": "string"}},
}
