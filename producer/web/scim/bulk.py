"""``POST /scim/v2/Bulk`` (RFC 7644 §3.7): a Bulk request is an import, one row (one message) per operation.

The operations are planned in order (:func:`producer.web.scim.planning.plan_user_write`)
and gathered into one import with a row each, applied by the workers as a
file's rows are, with one ``import.completed`` event (and webhook) for all of
them. An operation that names a person already in the gathered ones (a
PATCH after a POST of the same person, a path ``/Users/bulkId:x`` whose POST
is gathered) first sends what is gathered, as an import of its own, and is
planned once it is done: a Bulk of distinct people is one import, a Bulk
that works on one person in steps is one import per step. ``failOnErrors``
stops once that many operations failed; since a row's own errors (an invalid
address, say) are known once it is imported, a Bulk with ``failOnErrors``
sends each operation as an import of its own, so the count is exact. The answer waits
for each import as a single write does (``SCIM_WAIT_S`` each); past the bound
it is 503, and the operations not yet reported may or may not be applied
(a retry finds POSTed people as 409s). Groups are written one request at a
time (``/Groups``), not in a Bulk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from producer.web.context import pool_of, settings_of
from producer.web.scim.errors import ScimError, scim_endpoint, scim_json
from producer.web.scim.filters import get_key
from producer.web.scim.planning import UserWrite, after_write, parse_id, plan_user_write
from producer.web.scim.requests import json_body, scim_principal
from producer.web.scim.schemas import (
    BULK_REQUEST,
    BULK_RESPONSE,
    ERROR,
    MAX_BULK_OPERATIONS,
    MAX_BULK_PAYLOAD,
)
from producer.web.scim.users import base_url
from producer.web.scim.writes import write_rows


@dataclass
class _Gathered:
    """The operations planned and not yet sent: their index in the answer and their write."""

    writes: list[tuple[int, str | None, UserWrite]] = field(default_factory=list)

    def names(self, person_id: int | None, email: str | None) -> bool:
        return any(
            (person_id is not None and w.person_id == person_id) or (email is not None and w.email == email)
            for _, _, w in self.writes
        )


def _error_result(method: str, bulk_id: str | None, exc: ScimError) -> dict[str, Any]:
    response: dict[str, Any] = {"schemas": [ERROR], "status": str(exc.status), "detail": exc.detail}
    if exc.scim_type:
        response["scimType"] = exc.scim_type
    result = {"method": method, "status": str(exc.status), "response": response}
    return result | ({"bulkId": bulk_id} if bulk_id else {})


class _Bulk:
    def __init__(self, request: Request, tenant: str, token_id: int) -> None:
        self.request, self.tenant, self.token_id = request, tenant, token_id
        self.pool: asyncpg.Pool = pool_of(request)
        self.base = base_url(request)
        self.results: list[dict[str, Any] | None] = []
        self.bulk_ids: dict[str, int] = {}
        self.gathered = _Gathered()
        self.errors = 0

    async def flush(self) -> None:
        if not self.gathered.writes:
            return
        writes, self.gathered = self.gathered.writes, _Gathered()
        wait_s = settings_of(self.request).scim_wait_s
        outcomes = await write_rows(
            self.pool, self.tenant, self.token_id, [w.row for _, _, w in writes], "SCIM POST /Bulk", wait_s
        )
        for (index, bulk_id, write), outcome in zip(writes, outcomes, strict=True):
            try:
                person_id = write.settle(outcome)
            except ScimError as exc:
                self.results[index] = _error_result(write.method, bulk_id, exc)
                self.errors += 1
                continue
            await after_write(self.pool, self.tenant, write, person_id)
            if bulk_id:
                self.bulk_ids[bulk_id] = person_id
            status = {"POST": "201", "DELETE": "204"}.get(write.method, "200")
            result = {"method": write.method, "status": status, "location": f"{self.base}/Users/{person_id}"}
            self.results[index] = result | ({"bulkId": bulk_id} if bulk_id else {})

    async def _person_of(self, raw: str) -> int:
        if not raw.startswith("bulkId:"):
            return parse_id(raw)
        bulk_id = raw.removeprefix("bulkId:")
        if bulk_id not in self.bulk_ids and any(b == bulk_id for _, b, _ in self.gathered.writes):
            await self.flush()
        if bulk_id not in self.bulk_ids:
            raise ScimError(409, f"bulkId {bulk_id} names no User created by this request", "invalidValue")
        return self.bulk_ids[bulk_id]

    async def operation(self, index: int, op: dict[str, Any]) -> None:
        method = str(get_key(op, "method") or "").upper()
        bulk_id = get_key(op, "bulkId")
        bulk_id = str(bulk_id) if bulk_id is not None else None
        path = str(get_key(op, "path") or "")
        try:
            if method not in ("POST", "PUT", "PATCH", "DELETE"):
                raise ScimError(
                    400, f"method must be POST, PUT, PATCH or DELETE, not {method!r}", "invalidSyntax"
                )
            if method == "POST" and not bulk_id:
                raise ScimError(400, "a POST in a Bulk needs its bulkId", "invalidValue")
            parts = path.strip("/").split("/")
            if parts[0] != "Users" or len(parts) != (1 if method == "POST" else 2):
                raise ScimError(
                    400, f"{method} {path!r}: a Bulk writes /Users and /Users/{{id}} here", "invalidPath"
                )
            person_id = await self._person_of(parts[1]) if len(parts) == 2 else None
            data = get_key(op, "data")
            email = get_key(data, "userName") if isinstance(data, dict) else None
            email = email.strip().lower() if isinstance(email, str) else None
            if self.gathered.names(person_id, email):
                await self.flush()
            write = await plan_user_write(self.pool, self.tenant, method, person_id, data, self.base)
            if self.gathered.names(None, write.email):
                await self.flush()
                write = await plan_user_write(self.pool, self.tenant, method, person_id, data, self.base)
        except ScimError as exc:
            self.results[index] = _error_result(method or "?", bulk_id, exc)
            self.errors += 1
            return
        self.gathered.writes.append((index, bulk_id, write))


@scim_endpoint
async def bulk(request: Request) -> Response:
    """POST /Bulk: each operation's status, in order (the ones failOnErrors stopped before left out)."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    body = await json_body(request, limit=MAX_BULK_PAYLOAD)
    if not isinstance(body, dict) or BULK_REQUEST.lower() not in {
        str(s).lower() for s in body.get("schemas") or []
    }:
        raise ScimError(400, f"a Bulk request is a {BULK_REQUEST} message", "invalidSyntax")
    ops = get_key(body, "Operations")
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise ScimError(400, "Operations must be a list of operations", "invalidSyntax")
    if len(ops) > MAX_BULK_OPERATIONS:
        raise ScimError(413, f"at most {MAX_BULK_OPERATIONS} operations per Bulk request", "tooMany")
    fail_on = get_key(body, "failOnErrors")
    if fail_on is not None and (not isinstance(fail_on, int) or isinstance(fail_on, bool) or fail_on < 1):
        raise ScimError(400, "failOnErrors must be a whole number above 0", "invalidValue")
    run = _Bulk(request, principal.tenant, principal.token_id)
    for index, op in enumerate(ops):
        if fail_on is not None and run.errors >= fail_on:
            break
        run.results.append(None)
        await run.operation(index, op)
        if fail_on is not None:
            await run.flush()  # a row's own errors are known once imported: counted exactly
    if fail_on is None or run.errors < fail_on or run.gathered.writes:
        await run.flush()
    return scim_json({"schemas": [BULK_RESPONSE], "Operations": [r for r in run.results if r is not None]})
