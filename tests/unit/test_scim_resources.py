"""People as Users and Users as rows (producer.web.scim.resources), and PATCH (producer.web.scim.patch)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from producer.web.scim.errors import ScimError
from producer.web.scim.patch import apply_patch, operations
from producer.web.scim.resources import row_of_user, user_resource
from producer.web.scim.schemas import ENTERPRISE, PATCH_OP, USER

PERSON = {
    "id": 7,
    "email": "dana@example.com",
    "first_name": "Dana",
    "last_name": "Cho",
    "job_title": "Engineer",
    "language": "en",
    "location": "Lyon",
    "employee_id": "E-1",
    "status": "active",
    "created_at": datetime(2026, 12, 1, tzinfo=UTC),
    "updated_at": datetime(2026, 12, 2, tzinfo=UTC),
    "primary_team": "Sales",
    "manager_id": 3,
    "manager_name": "Mia Manager",
}


def dana() -> dict[str, Any]:
    return user_resource(PERSON, "https://x/scim/v2")


def test_a_person_is_answered_with_the_mapping() -> None:
    user = dana()
    assert user["id"] == "7" and user["userName"] == "dana@example.com" and user["externalId"] == "E-1"
    assert user["addresses"] == [{"locality": "Lyon"}] and user["preferredLanguage"] == "en"
    assert user[ENTERPRISE] == {
        "employeeNumber": "E-1",
        "department": "Sales",
        "manager": {"value": "3", "$ref": "https://x/scim/v2/Users/3", "displayName": "Mia Manager"},
    }
    assert user["meta"]["location"] == "https://x/scim/v2/Users/7"
    assert user["meta"]["created"] == "2026-12-01T00:00:00Z"


def test_a_user_read_back_is_the_same_row() -> None:
    row = row_of_user(dana())
    assert row.cells == {
        "email": "dana@example.com",
        "first_name": "Dana",
        "last_name": "Cho",
        "job_title": "Engineer",
        "language": "en",
        "location": "Lyon",
        "primary_team": "Sales",
        "secondary_teams": "",
        "employee_id": "E-1",
        "previous_email": "",
    }
    assert row.flags == {}


def test_a_new_user_name_is_a_rename_and_inactive_deactivates() -> None:
    user = dana() | {"userName": " Dana.Park@Example.com ", "active": "False"}
    row = row_of_user(user, previous_email="dana@example.com")
    assert row.cells["email"] == "dana.park@example.com"
    assert row.cells["previous_email"] == "dana@example.com"
    assert row.flags == {"active": False}


@pytest.mark.parametrize(
    "user",
    [{"name": {"givenName": "A"}}, {"userName": 5}, {"userName": "a@b", "title": {"x": 1}}],
)
def test_bad_users_are_invalid_values(user: dict[str, Any]) -> None:
    with pytest.raises(ScimError) as raised:
        row_of_user(user)
    assert raised.value.status == 400 and raised.value.scim_type == "invalidValue"


def patched(*ops: dict[str, Any]) -> dict[str, Any]:
    return apply_patch(dana(), operations({"schemas": [PATCH_OP], "Operations": list(ops)}))


def test_okta_deactivates_with_a_value_object() -> None:
    assert patched({"op": "replace", "value": {"active": False}})["active"] is False


def test_entra_forms() -> None:
    user = patched(
        {"op": "Replace", "path": "title", "value": "Lead"},
        {"op": "Add", "value": {"name.givenName": "Dani", f"{ENTERPRISE}:department": "Ops"}},
        {"op": "Replace", "path": 'addresses[type eq "work"].locality', "value": "Paris"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ignored@example.com"},
    )
    row = row_of_user(user)
    assert (row.cells["job_title"], row.cells["first_name"], row.cells["primary_team"]) == (
        "Lead",
        "Dani",
        "Ops",
    )
    assert row.cells["location"] == "Paris"
    assert row.cells["email"] == "dana@example.com"  # emails is read-only: the address is userName


def test_remove_and_whole_extension() -> None:
    user = patched({"op": "remove", "path": "title"}, {"op": "remove", "path": ENTERPRISE})
    row = row_of_user(user)
    assert row.cells["job_title"] == "" and row.cells["primary_team"] == ""
    user = patched({"op": "replace", "path": ENTERPRISE, "value": {"department": "Ops"}})
    assert row_of_user(user).cells["primary_team"] == "Ops"
    assert (
        row_of_user(patched({"op": "add", "path": f"{USER}:title", "value": "X"})).cells["job_title"] == "X"
    )


@pytest.mark.parametrize(
    ("op", "scim_type"),
    [
        ({"op": "replace", "path": "id", "value": "9"}, "mutability"),
        ({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "1"}}, "mutability"),
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "emails[type eq", "value": "x"}, "invalidPath"),
    ],
)
def test_patches_refused(op: dict[str, Any], scim_type: str) -> None:
    with pytest.raises(ScimError) as raised:
        patched(op)
    assert raised.value.scim_type == scim_type


def test_a_patch_body_is_a_patch_op_of_bounded_size() -> None:
    with pytest.raises(ScimError):
        operations({"schemas": [USER], "Operations": []})
    with pytest.raises(ScimError) as raised:
        operations({"schemas": [PATCH_OP], "Operations": [{"op": "add"}] * 101})
    assert raised.value.scim_type == "tooMany"
