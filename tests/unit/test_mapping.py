"""Header matching: the template, real vendor exports, aliases, decorations, hints."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.columns import COLUMNS, REQUIRED_COLUMNS, TEMPLATE_COLUMNS, TEMPLATE_HEADERS
from core.intake.mapping import ColumnMapping, map_header, normalise

GOOGLE_WORKSPACE = [
    "First Name [Required]",
    "Last Name [Required]",
    "Email Address [Required]",
    "Password [Required]",
    "Password Hash Function [UPLOAD ONLY]",
    "Org Unit Path [Required]",
    "New Primary Email [UPLOAD ONLY]",
    "Recovery Email",
    "Home Secondary Email",
    "Work Secondary Email",
    "Recovery Phone [MUST BE IN THE E.164 FORMAT]",
    "Work Phone",
    "Employee ID",
    "Employee Type",
    "Employee Title",
    "Manager Email",
    "Department",
    "Cost Center",
    "Building ID",
    "New Status [UPLOAD ONLY]",
    "Last Sign In [READ ONLY]",
    "Email Usage [READ ONLY]",
]
ENTRA_BULK_CREATE = [
    "Name [displayName] Required",
    "User name [userPrincipalName] Required",
    "Initial password [passwordProfile] Required",
    "Block sign in (Yes/No) [accountEnabled] Required",
    "First name [givenName]",
    "Last name [surname]",
    "Job title [jobTitle]",
    "Department [department]",
    "Usage location [usageLocation]",
    "Street address [streetAddress]",
    "State or province [state]",
    "Country or region [country]",
    "Office [physicalDeliveryOfficeName]",
    "City [city]",
    "ZIP or postal code [postalCode]",
    "Office phone [telephoneNumber]",
    "Mobile phone [mobile]",
]
HR_SYSTEM = [
    "Employee #",
    "Legal First Name",
    "Preferred Name",
    "Legal Last Name",
    "Work Email",
    "Home Email",
    "Job Title",
    "Department",
    "Division",
    "Location",
    "Supervisor Email",
    "Hire Date",
]


def test_template_headers_map_exactly() -> None:
    mapping = map_header(list(TEMPLATE_HEADERS))
    assert mapping.fields == {field.name: index for index, field in enumerate(TEMPLATE_COLUMNS)}
    assert mapping.matched == {field.header: field.name for field in TEMPLATE_COLUMNS}
    assert (mapping.unmatched, mapping.missing_required, mapping.hints, mapping.duplicates) == (
        [],
        [],
        {},
        [],
    )
    assert all(mapping.header_of(field.name) == field.header for field in COLUMNS)


def test_a_previous_email_column_is_read_but_not_in_the_template() -> None:
    assert "Previous email" not in TEMPLATE_HEADERS
    mapping = map_header(["Email", "Old email", "Staff ID", "First name", "Last name"])
    assert mapping.fields == {
        "email": 0,
        "previous_email": 1,
        "employee_id": 2,
        "first_name": 3,
        "last_name": 4,
    }


def test_google_workspace_export() -> None:
    mapping = map_header(GOOGLE_WORKSPACE)
    assert mapping.fields == {
        "first_name": 0,
        "last_name": 1,
        "email": 2,
        "job_title": 14,
        "employee_id": 12,
        "primary_team": 16,
    }
    assert mapping.header_of("email") == "Email Address [Required]"
    # An OU path is an admin-policy container, not a team; managers are derived.
    assert "Org Unit Path [Required]" in mapping.unmatched
    assert "Manager Email" in mapping.unmatched
    assert "New Primary Email [UPLOAD ONLY]" in mapping.unmatched
    assert mapping.missing_required == [] and mapping.duplicates == []


def test_entra_bulk_create_prefers_the_bracketed_attribute() -> None:
    mapping = map_header(ENTRA_BULK_CREATE)
    assert mapping.fields == {
        "email": 1,
        "first_name": 4,
        "last_name": 5,
        "job_title": 6,
        "primary_team": 7,
        "location": 12,
    }
    assert mapping.matched["User name [userPrincipalName] Required"] == "email"
    # Display name is neither a first nor a last name; usage location is a licensing country.
    assert "Name [displayName] Required" in mapping.unmatched
    assert "Usage location [usageLocation]" in mapping.unmatched
    assert mapping.duplicates == ["City [city]"]


def test_bracketed_attribute_wins_over_the_label() -> None:
    assert map_header(["Title [department]"]).fields == {"primary_team": 0}
    assert map_header(["Title [unknownThing]"]).fields == {"job_title": 0}


def test_hr_system_export() -> None:
    mapping = map_header(HR_SYSTEM)
    assert mapping.fields == {
        "first_name": 1,
        "last_name": 3,
        "email": 4,
        "job_title": 6,
        "primary_team": 7,
        "location": 9,
    }
    assert mapping.unmatched == [
        "Employee #",
        "Preferred Name",
        "Home Email",
        "Division",
        "Supervisor Email",
        "Hire Date",
    ]


def test_workday_style_headers() -> None:
    mapping = map_header(
        [
            "Legal First Name",
            "Legal Last Name",
            "Email - Work",
            "Business Title",
            "Supervisory Organization",
            "Preferred Language",
        ]
    )
    assert set(mapping.fields) == {
        "first_name",
        "last_name",
        "email",
        "job_title",
        "primary_team",
        "language",
    }


ALIASES = {
    "email": [
        "e-mail",
        "email address",
        "e-mail address",
        "work email",
        "mail",
        "user principal name",
        "userPrincipalName",
        "primary email",
        "business email",
    ],
    "first_name": ["first name", "given name", "givenName", "forename", "first"],
    "last_name": ["last name", "surname", "family name", "sn", "last"],
    "job_title": ["title", "position", "job title", "jobTitle", "designation", "role title"],
    "primary_team": [
        "primary team",
        "team",
        "department",
        "dept",
        "group",
        "primary department",
        "org unit",
        "organizational unit",
    ],
    "secondary_teams": ["secondary team", "secondary teams", "additional teams", "other teams", "teams"],
    "role": ["role", "user role", "access level", "permission"],
    "language": ["language", "locale", "preferred language", "lang"],
    "location": ["location", "office", "city", "site", "office location", "work location", "officeLocation"],
}


@pytest.mark.parametrize(("field", "alias"), [(f, a) for f, aliases in ALIASES.items() for a in aliases])
def test_every_alias_family(field: str, alias: str) -> None:
    for spelling in (alias, alias.upper(), alias.title(), alias.replace(" ", "_")):
        assert map_header([spelling]).fields == {field: 0}, spelling


@pytest.mark.parametrize(
    "header",
    [
        "Email",
        "  Email  ",
        "\ufeffEmail",
        "Email*",
        "Email *",
        "Email **",
        "Email [Required]",
        "Email (optional)",
        "Email address [Required]",
        "E-MAIL",
        "e_mail",
        "E.Mail",
        "Émail",
        "Ｅｍａｉｌ",
        "Email Required",
        "Email [mail] Required",
    ],
)
def test_decorations_are_ignored(header: str) -> None:
    mapping = map_header([header])
    assert mapping.fields == {"email": 0}
    assert list(mapping.matched) == [header.replace("\ufeff", "").strip()]


def test_french_and_german_headers() -> None:
    assert set(map_header(["Prénom", "Nom", "Courriel", "Équipe", "Langue"]).fields) == {
        "first_name",
        "last_name",
        "email",
        "primary_team",
        "language",
    }
    assert set(map_header(["Vorname", "Nachname", "E-Mail-Adresse", "Abteilung"]).fields) == {
        "first_name",
        "last_name",
        "email",
        "primary_team",
    }


def test_unmatched_keeps_file_order_and_names_blank_columns() -> None:
    mapping = map_header(["Badge", "Email", "", "First name", "  ", "Last name", "Shoe size"])
    assert mapping.unmatched == ["Badge", "(column 3)", "(column 5)", "Shoe size"]
    assert mapping.missing_required == []


def test_missing_required_fields_with_hints() -> None:
    mapping = map_header(["Frist name", "Surnme", "E-mial", "Hire date"])
    assert mapping.missing_required == ["first_name", "last_name", "email"]
    assert mapping.hints == {"first_name": "Frist name", "last_name": "Surnme", "email": "E-mial"}
    assert mapping.header_of("email") == "Email"


def test_no_hint_when_nothing_is_close() -> None:
    mapping = map_header(["First name", "Last name", "Badge", "SSN", "Manager Email"])
    assert mapping.missing_required == ["email"]
    assert mapping.hints == {}
    assert map_header(["First name", "Email", "SSN"]).hints == {}


def test_a_field_matched_twice_keeps_the_first_column() -> None:
    mapping = map_header(["E-mail", "First name", "Email", "Last name", "Department", "Team"])
    assert mapping.fields["email"] == 0 and mapping.fields["primary_team"] == 4
    assert mapping.duplicates == ["Email", "Team"]
    assert mapping.header_of("email") == "E-mail"


def test_header_of_an_unmapped_field_is_the_template_header() -> None:
    mapping = map_header(["Email", "First name", "Last name"])
    assert mapping.header_of("secondary_teams") == "Secondary team"


def test_normalise() -> None:
    assert normalise("  E-Mail Address [x]") == "emailaddressx"
    assert normalise("Prénom") == "prenom"
    assert normalise("Ｅｍａｉｌ") == "email"
    assert normalise("Straße") == "strasse"


header_cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from([*TEMPLATE_HEADERS, *GOOGLE_WORKSPACE, *ENTRA_BULK_CREATE, *HR_SYSTEM, ""]),
)


@settings(max_examples=200)
@given(st.lists(header_cells, max_size=15))
def test_every_header_lands_in_exactly_one_list(header: list[str]) -> None:
    mapping = map_header(header)
    assert isinstance(mapping, ColumnMapping)
    lists = (mapping.matched, mapping.unmatched, mapping.duplicates, mapping.ignored)
    assert sum(len(shown) for shown in lists) == len(header)
    assert sorted(mapping.fields.values()) == sorted(set(mapping.fields.values()))
    assert set(mapping.matched.values()) == set(mapping.fields)
    assert set(mapping.missing_required) == set(REQUIRED_COLUMNS) - set(mapping.fields)
    assert set(mapping.hints) <= set(mapping.missing_required)
    assert set(mapping.hints.values()) <= set(mapping.unmatched)
    for field, index in mapping.fields.items():
        assert mapping.header_of(field) == header[index].replace("\ufeff", "").strip()
