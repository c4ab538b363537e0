"""One write to a User, planned: the row it becomes, before it is imported (alone, or in a Bulk)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from core.columns import DEACTIVATE_FLAG
from producer.queries import QUERIES
from producer.web.scim.errors import ScimError
from producer.web.scim.patch import apply_patch, operations
from producer.web.scim.resources import UserRow, check_schemas, row_of_user, user_resource
from producer.web.scim.schemas import USER
from producer.web.scim.writes import RowOutcome, raise_for

SCIM_PEOPLE_BY_IDS = QUERIES["scim_people_by_ids"]
SCIM_PEOPLE_BY_KEY = QUERIES["scim_people_by_key"]
SCIM_RECORD_DELETION = QUERIES["scim_record_deletion"]

_MAX_ID = 2**63 - 1


@dataclass
class UserWrite:
    """A planned write: its method, row, the person it must reach (None: a new one)."""

    method: str
    row: UserRow
    person_id: int | None

    @property
    def email(self) -> str:
        return self.row.cells["email"]

    def settle(self, outcome: RowOutcome) -> int:
        """The person the row reached, or the SCIM error of the write."""
        person_id = raise_for(outcome)
        if self.person_id is not None and person_id != self.person_id:
            raise ScimError(409, f"userName {self.email} is another User's", "uniqueness")
        return person_id


def parse_id(raw: str) -> int:
    """A User's id from a path; 404 for what cannot be one."""
    if not raw.isdigit() or int(raw) > _MAX_ID:
        raise ScimError(404, f"no User {raw}")
    return int(raw)


async def stored_person(pool: asyncpg.Pool, tenant: str, person_id: int) -> asyncpg.Record:
    """The tenant's person as SCIM sees them; another tenant's answers 404 exactly like nobody."""
    person = await pool.fetchrow(SCIM_PEOPLE_BY_IDS, tenant, [person_id])
    if person is None:
        raise ScimError(404, f"no User {person_id}")
    return person


def _user_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a User object", "invalidSyntax")
    check_schemas(body, USER)
    return body


async def plan_user_write(
    pool: asyncpg.Pool, tenant: str, method: str, person_id: int | None, body: Any, base: str
) -> UserWrite:
    """The row of a POST (``person_id`` None), PUT, PATCH or DELETE of a User; ScimError when refused."""
    if method == "POST":
        row = row_of_user(_user_body(body))
        existing = await pool.fetch(SCIM_PEOPLE_BY_KEY, tenant, row.cells["email"], None)
        if existing:
            raise ScimError(409, f"userName {row.cells['email']} is User {existing[0]['id']}", "uniqueness")
        return UserWrite(method, row, None)
    assert person_id is not None
    person = await stored_person(pool, tenant, person_id)
    if method == "PUT":
        row = row_of_user(_user_body(body), person["email"], person["secondary_teams"])
    elif method == "PATCH":
        patched = apply_patch(user_resource(person, base), operations(body))
        row = row_of_user(patched, person["email"], person["secondary_teams"])
    elif method == "DELETE":
        row = row_of_user(user_resource(person, base), None, person["secondary_teams"])
        row.flags = {DEACTIVATE_FLAG: False}
    else:
        raise ScimError(405, f"{method} is not a write of a User")
    return UserWrite(method, row, person_id)


async def after_write(pool: asyncpg.Pool, tenant: str, write: UserWrite, person_id: int) -> None:
    """What a write does once its import is done: a DELETEd person answers 404 from now on."""
    if write.method == "DELETE":
        await pool.execute(SCIM_RECORD_DELETION, tenant, person_id)
