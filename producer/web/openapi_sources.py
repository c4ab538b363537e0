"""The OpenAPI paths of the scheduled sources (:mod:`producer.web.sources_api`), merged into
:data:`producer.web.openapi.OPENAPI`."""

from __future__ import annotations

from typing import Any

from core.intake.options import OPTION_NAMES
from producer.web.openapi_parts import TENANT, errors, json

SOURCE_ID = {"name": "source_id", "in": "path", "required": True, "schema": {"type": "integer"}}
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SOURCE_REQUEST = {
    "type": "object",
    "required": ["name", "url"],
    "properties": {
        "name": {"type": "string", "description": "Unique per tenant."},
        "url": {"type": "string", "description": "sftp://USER@HOST:PORT/PATH-OR-GLOB or https://HOST/PATH"},
        "password": {"type": "string", "description": "SFTP: the password (stored encrypted, never shown)."},
        "private_key": {
            "type": "string",
            "description": "SFTP: an unencrypted private key (OpenSSH or PEM).",
        },
        "header": {"type": "string", "description": "HTTPS: 'Name: value' sent with each fetch (a secret)."},
        "host_key": {"type": "string", "description": "SFTP: the fingerprint expected (SHA256:…)."},
        "accept_host_key": {"type": "boolean", "description": "SFTP: pin whatever key the server presents."},
        "schedule": {"type": "string", "description": "Cron in the tenant's timezone, or 'every N hours'."},
        "options": {
            "type": "object",
            "description": f"The import's options ({', '.join(OPTION_NAMES)}); invites none or now.",
        },
    },
}

SOURCE_PATHS: dict[str, Any] = {
    "/api/sources": {
        "post": {
            "summary": "Save a scheduled source (SFTP or HTTPS) with its import's settings and schedule",
            "parameters": [TENANT],
            "requestBody": {"required": True, "content": {"application/json": {"schema": SOURCE_REQUEST}}},
            "responses": {
                "201": json("The source (never its secrets: `has_secret`)."),
                "409": json(
                    "The SFTP server's key is not confirmed: `host_key` is its fingerprint; nothing saved."
                ),
                **errors(400, 403),
            },
        },
        "get": {
            "summary": "The tenant's sources, each with its last run",
            "parameters": [TENANT],
            "responses": {"200": json("`sources`."), **errors(403)},
        },
    },
    "/api/sources/{source_id}": {
        "get": {
            "summary": "A source and its latest runs",
            "parameters": [SOURCE_ID, TENANT],
            "responses": {"200": json("The source with `runs`."), **errors(404)},
        },
        "delete": {
            "summary": "Remove a source (never run again, its secret erased; its runs and imports stay)",
            "parameters": [SOURCE_ID, TENANT],
            "responses": {"200": json("`id`, `removed`."), **errors(404)},
        },
    },
    "/api/sources/{source_id}/test": {
        "post": {
            "summary": "Log in and resolve the path (or GET the URL), fetching nothing",
            "parameters": [SOURCE_ID, TENANT],
            "responses": {"200": json("`ok` with `message`, or `ok: false` with `error`."), **errors(404)},
        }
    },
    "/api/sources/{source_id}/run": {
        "post": {
            "summary": "One run now, on the workers",
            "parameters": [SOURCE_ID, TENANT],
            "responses": {
                "202": json("The run (poll `/api/sources/runs/{id}` for its outcome)."),
                "200": json("A run of the source was already under way: that run."),
                **errors(404),
            },
        }
    },
    "/api/sources/{source_id}/pause": {
        "post": {
            "summary": "No more scheduled runs until resumed",
            "parameters": [SOURCE_ID, TENANT],
            "responses": {"200": json("The source."), **errors(404)},
        }
    },
    "/api/sources/{source_id}/resume": {
        "post": {
            "summary": "Scheduled runs again, from the next tick after now",
            "parameters": [SOURCE_ID, TENANT],
            "responses": {"200": json("The source."), **errors(404)},
        }
    },
    "/api/sources/runs/{run_id}": {
        "get": {
            "summary": "A run: state, outcome (imported, unchanged, blocked, failed), reason, file, import",
            "parameters": [RUN_ID, TENANT],
            "responses": {"200": json("The run."), **errors(404)},
        }
    },
    "/api/sources/runs/{run_id}/approve": {
        "post": {
            "summary": "Import the file the sweep guard blocked this run on, deactivating whom it would",
            "parameters": [RUN_ID, TENANT],
            "responses": {"202": json("The new run."), **errors(404, 409)},
        }
    },
}
