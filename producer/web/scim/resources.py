"""People as SCIM Users, and Users as import rows: the mapping, in plain functions.

| SCIM                                   | here                                        |
| -------------------------------------- | ------------------------------------------- |
| ``id``                                 | the person's id                             |
| ``userName``                           | e-mail (lower-cased); a change is a rename  |
| ``externalId`` (enterprise ``employeeNumber``: read-only, the same) | Employee ID (never changed) |
| ``name.givenName`` / ``familyName``    | first / last name (required)                |
| ``title``                              | job title                                   |
| ``preferredLanguage``                  | language                                    |
| ``addresses[0].locality`` (the work one) | location                                  |
| ``active``                             | status (false: deactivated)                 |
| enterprise ``department``              | primary team                                |
| enterprise ``manager`` (read-only)     | the primary team's manager                  |
| ``emails`` (read-only)                 | ``[userName]``                              |

A write becomes a row of the template's columns (:func:`row_of_user`): the
same validation, identity rules, update rule, teams and managers as a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.columns import DEACTIVATE_FLAG, SECONDARY_TEAM_SEPARATOR
from producer.web.scim.errors import ScimError
from producer.web.scim.filters import get_key
from producer.web.scim.schemas import ENTERPRISE, RESOURCE_SCHEMAS, USER

# The columns every SCIM row gives (all of them: a blank clears, as in a file
# with ``blank_cells=clear``); role and secondary teams are not SCIM's.
ROW_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "job_title",
    "language",
    "location",
    "primary_team",
    "secondary_teams",
    "employee_id",
    "previous_email",
)


@dataclass
class UserRow:
    """What one SCIM write asks of the pipeline: a row's cells by column name, and its flags."""

    cells: dict[str, str]
    flags: dict[str, Any] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def user_resource(person: Mapping[str, Any], base: str) -> dict[str, Any]:
    """A person (``scim_person_*`` statements' columns) as the User answered."""
    location = f"{base}/Users/{person['id']}"
    user: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "id": str(person["id"]),
        "userName": person["email"],
        "name": {"givenName": person["first_name"], "familyName": person["last_name"]},
        "active": person["status"] == "active",
        "emails": [{"value": person["email"], "type": "work", "primary": True}],
        "meta": {
            "resourceType": "User",
            "created": _iso(person["created_at"]),
            "lastModified": _iso(person["updated_at"]),
            "location": location,
        },
    }
    if person["employee_id"]:
        user["externalId"] = person["employee_id"]
    if person["job_title"]:
        user["title"] = person["job_title"]
    if person["language"]:
        user["preferredLanguage"] = person["language"]
    if person["location"]:
        user["addresses"] = [{"locality": person["location"]}]
    enterprise: dict[str, Any] = {}
    if person["employee_id"]:
        enterprise["employeeNumber"] = person["employee_id"]
    if person["primary_team"]:
        enterprise["department"] = person["primary_team"]
    if person["manager_id"] is not None:
        enterprise["manager"] = {
            "value": str(person["manager_id"]),
            "$ref": f"{base}/Users/{person['manager_id']}",
            "displayName": person["manager_name"],
        }
    if enterprise:
        user[ENTERPRISE] = enterprise
    return user


def check_schemas(body: Mapping[str, Any], expected: str) -> None:
    """A resource body names the User schema and no unknown one (``invalidValue`` otherwise)."""
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise ScimError(400, "the body must list its schemas", "invalidSyntax")
    known = {s.lower() for s in RESOURCE_SCHEMAS}
    unknown = [s for s in schemas if s.lower() not in known]
    if unknown:
        raise ScimError(
            400,
            f"unknown schema {unknown[0]!r}: this service has {', '.join(RESOURCE_SCHEMAS)}",
            "invalidValue",
        )
    if expected.lower() not in {s.lower() for s in schemas}:
        raise ScimError(400, f"the body's schemas must include {expected}", "invalidValue")


def _text(value: Any, attribute: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScimError(400, f"{attribute} must be a string", "invalidValue")
    return str(value).strip()


def as_bool(value: Any, attribute: str = "active") -> bool:
    """A boolean as identity providers send it (Entra sends ``"False"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ScimError(400, f"{attribute} must be true or false", "invalidValue")


def _work_locality(addresses: Any) -> str:
    if addresses in (None, []):
        return ""
    if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
        raise ScimError(400, "addresses must be a list of addresses", "invalidValue")
    chosen = next((a for a in addresses if str(get_key(a, "type") or "").lower() == "work"), None)
    chosen = chosen or next((a for a in addresses if get_key(a, "primary") is True), addresses[0])
    return _text(get_key(chosen, "locality"), "addresses.locality")


def row_of_user(
    user: Mapping[str, Any], previous_email: str | None = None, secondary_teams: Sequence[str] = ()
) -> UserRow:
    """The import row a User asks for.

    ``previous_email``: the stored person's address (a different userName renames
    them); ``secondary_teams``: theirs, which a User does not carry (Groups do).
    """
    user_name = get_key(user, "userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise ScimError(400, "userName is required: the person's e-mail address", "invalidValue")
    name = get_key(user, "name") or {}
    if not isinstance(name, dict):
        raise ScimError(400, "name must be an object with givenName and familyName", "invalidValue")
    enterprise = get_key(user, ENTERPRISE) or {}
    if not isinstance(enterprise, dict):
        raise ScimError(400, f"{ENTERPRISE} must be an object", "invalidValue")
    # employeeNumber is read-only (it echoes externalId): ignored, as RFC 7643 §7 wants.
    external = _text(get_key(user, "externalId"), "externalId")
    email = user_name.strip().lower()
    cells = {
        "email": email,
        "first_name": _text(get_key(name, "givenName"), "name.givenName"),
        "last_name": _text(get_key(name, "familyName"), "name.familyName"),
        "job_title": _text(get_key(user, "title"), "title"),
        "language": _text(get_key(user, "preferredLanguage"), "preferredLanguage"),
        "location": _work_locality(get_key(user, "addresses")),
        "primary_team": _text(get_key(enterprise, "department"), "department"),
        "secondary_teams": f"{SECONDARY_TEAM_SEPARATOR} ".join(secondary_teams),
        "employee_id": external,
        "previous_email": previous_email if previous_email and previous_email != email else "",
    }
    active = get_key(user, "active")
    flags = {} if active is None or as_bool(active) else {DEACTIVATE_FLAG: False}
    return UserRow(cells, flags)
