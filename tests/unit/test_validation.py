"""One row's cells → a clean row or reasons; formulas, domain typos, team identity."""

from __future__ import annotations

import string

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from core.columns import TEMPLATE_HEADERS
from core.intake.mapping import map_header
from core.intake.validation import (
    LANGUAGE_NAMES,
    CleanRow,
    Problem,
    RowResult,
    email_domain_typo,
    looks_like_formula,
    neutralise_formula,
    raw_keys,
    team_key,
    validate_row,
)
from core.vocabulary import Role

TEMPLATE = map_header(list(TEMPLATE_HEADERS))
COLUMNS = [
    "first_name",
    "last_name",
    "email",
    "job_title",
    "primary_team",
    "secondary_teams",
    "role",
    "language",
    "location",
    "employee_id",
]


def cells(**values: str) -> list[str]:
    """A template row: Jane Doe, jane@example.com, everything else blank unless given."""
    row = {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com", **values}
    return [row.get(name, "") for name in COLUMNS]


def check(**values: str) -> RowResult:
    return validate_row(7, cells(**values), TEMPLATE)


def clean(**values: str) -> CleanRow:
    result = check(**values)
    assert result.errors == [], result.errors
    assert result.row is not None
    return result.row


def only_error(**values: str) -> Problem:
    result = check(**values)
    assert result.row is None
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


# -- the whole row ---------------------------------------------------------------------------


def test_a_full_clean_row() -> None:
    result = check(
        job_title=" Engineer ",
        primary_team=" Sales   EMEA ",
        secondary_teams="Marketing; Ops",
        role="Manager",
        language="FR",
        location="Paris",
    )
    assert result == RowResult(
        CleanRow(
            "jane@example.com",
            {
                "first_name": "Jane",
                "last_name": "Doe",
                "job_title": "Engineer",
                "primary_team": "Sales EMEA",
                "secondary_teams": ["Marketing", "Ops"],
                "role": "manager",
                "language": "fr",
                "location": "Paris",
                "employee_id": None,
            },
        ),
        [],
        [],
    )


def test_blank_optional_cells() -> None:
    assert clean().fields == {
        "first_name": "Jane",
        "last_name": "Doe",
        "job_title": None,
        "primary_team": None,
        "secondary_teams": [],
        "role": None,
        "language": None,
        "location": None,
        "employee_id": None,
    }


def test_only_the_fields_whose_columns_exist() -> None:
    mapping = map_header(["Email", "Given name", "Surname"])
    result = validate_row(2, ["jane@example.com", "Jane", "Doe"], mapping)
    assert result.row == CleanRow("jane@example.com", {"first_name": "Jane", "last_name": "Doe"})


def test_cells_beyond_a_short_row_are_blank() -> None:
    result = validate_row(3, ["Jane", "Doe", "jane@example.com"], TEMPLATE)
    assert result.row is not None and result.row.fields["role"] is None
    assert validate_row(4, ["Jane"], TEMPLATE).errors[-1].message == "Email is required but blank; fill it in"


def test_every_error_of_a_row_is_listed_in_column_order() -> None:
    result = validate_row(9, ["", "A\nB", "jane@@example.com", "", "", "", "Boss", "Klingon"], TEMPLATE)
    assert result.row is None
    assert [(p.row, p.column) for p in result.errors] == [
        (9, "First name"),
        (9, "Last name"),
        (9, "Email"),
        (9, "Role"),
        (9, "Language"),
    ]


def test_problems_name_the_files_header_and_raw_value() -> None:
    mapping = map_header(["Email Address [Required]", "First Name [Required]", "Last Name [Required]"])
    result = validate_row(5, ["  not-an-email ", "Jane", "Doe"], mapping)
    assert result.errors == [
        Problem(
            5,
            "Email Address [Required]",
            "  not-an-email ",
            "'not-an-email' is not a valid e-mail address: an email address must have an @-sign",
        )
    ]


# -- required fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "header"), [("first_name", "First name"), ("last_name", "Last name"), ("email", "Email")]
)
def test_required_fields_must_not_be_blank(field: str, header: str) -> None:
    problem = only_error(**{field: " \t "})
    assert (problem.column, problem.value) == (header, " \t ")
    assert problem.message == f"{header} is required but blank; fill it in"


def test_a_missing_required_column_is_an_error_on_every_row() -> None:
    mapping = map_header(["Email", "First name"])
    result = validate_row(2, ["jane@example.com", "Jane"], mapping)
    assert result.row is None
    assert result.errors == [Problem(2, "Last name", "", "the file has no Last name column; add one")]


# -- e-mail -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("jane@@example.com", "the part after the @-sign contains invalid characters: '@'"),
        ("jane", "an email address must have an @-sign"),
        ("jane@", "there must be something after the @-sign"),
        ("jane@example", "the part after the @-sign is not valid. It should have a period"),
        ("jane doe@example.com", "the email address contains invalid characters before the @-sign: SPACE"),
        ("jane..doe@example.com", "an email address cannot have two periods in a row"),
        ("Jane <jane@example.com>", None),
    ],
)
def test_invalid_emails_carry_the_librarys_reason(value: str, reason: str | None) -> None:
    problem = only_error(email=value)
    assert problem.message.startswith(f"'{value}' is not a valid e-mail address: ")
    if reason is not None:
        assert problem.message.endswith(reason)


def test_email_is_trimmed_and_lower_cased_without_a_warning() -> None:
    result = check(email="  Jane.Doe@EXAMPLE.com\u00a0")
    assert result.row is not None and result.row.email == "jane.doe@example.com"
    assert result.warnings == []


def test_international_addresses_are_accepted() -> None:
    assert clean(email="José@ÉXAMPLE.com").email == "josé@éxample.com"
    assert clean(email="user@xn--bcher-kva.de").email == "user@bücher.de"


def test_email_length_limit() -> None:
    def address(length: int) -> str:
        return "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * (length - 197) + ".com"

    assert len(address(255)) == 255
    assert clean(email=address(254)).email == address(254)
    assert only_error(email=address(255)).message.endswith("is 255 characters long; Email allows at most 254")


locals_ = st.text(alphabet="abcXYZ09.!#$%&'*+/=?^_`{|}~-é\"@ ", min_size=0, max_size=12)
domains = st.sampled_from(
    [
        "example.com",
        "EXAMPLE.org",
        "bücher.de",
        "xn--bcher-kva.de",
        "a.b",
        "example",
        "-bad.com",
        "exa_mple.com",
        "localhost",
        "test.local",
        "b" * 63 + ".com",
    ]
)


@settings(max_examples=200, deadline=None)
@given(locals_, domains)
def test_email_matches_the_librarys_own_verdict(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    try:
        expected: str | None = validate_email(
            address.strip(), check_deliverability=False, allow_smtputf8=True
        ).normalized.lower()
    except EmailNotValidError:
        expected = None
    result = check(email=address)
    assert (result.row.email if result.row else None) == expected


# -- lengths and control characters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "header", "limit"),
    [
        ("first_name", "First name", 100),
        ("last_name", "Last name", 100),
        ("job_title", "Job title", 200),
        ("primary_team", "Primary team", 200),
        ("location", "Location", 200),
    ],
)
def test_length_limits_name_the_limit(field: str, header: str, limit: int) -> None:
    assert check(**{field: "x" * limit}).row is not None
    problem = only_error(**{field: "x" * (limit + 1)})
    assert problem.message == f"'{'x' * 60}…' is {limit + 1} characters long; {header} allows at most {limit}"


@pytest.mark.parametrize("value", ["Jane\nMarie", "Jane\r\nMarie", "Jane\rMarie"])
def test_line_breaks_are_errors(value: str) -> None:
    problem = only_error(first_name=value)
    assert problem.message.endswith("contains a line break; First name must be on one line")
    assert "\n" not in problem.message and "\r" not in problem.message


@pytest.mark.parametrize(
    ("value", "code"),
    [("Jane\x00", "U+0000"), ("Ja\tne", "U+0009"), ("Jane\x1b[31m", "U+001B"), ("Ja\x85ne", "U+0085")],
)
def test_control_characters_are_errors(value: str, code: str) -> None:
    problem = only_error(last_name=value)
    assert problem.message.endswith(f"contains a control character ({code}); remove it")


def test_surrounding_whitespace_is_trimmed_not_an_error() -> None:
    assert clean(first_name="\tJane\r\n", job_title=" Chief  Cook ").fields["job_title"] == "Chief  Cook"


def test_text_is_stored_in_nfc() -> None:
    assert clean(first_name="Jose\u0301").fields["first_name"] == "José"


# -- role and language ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "role"),
    [
        ("", None),
        ("Learner", "learner"),
        ("MANAGER", "manager"),
        (" admin ", "admin"),
        ("aDmIn", "admin"),
    ],
)
def test_roles(value: str, role: str) -> None:
    assert clean(role=value).fields["role"] == role


@pytest.mark.parametrize("value", ["Boss", "administrator", "learners", "Manager;Admin"])
def test_unknown_roles_list_the_allowed_values(value: str) -> None:
    problem = only_error(role=value)
    assert problem.message == (
        f"'{value}' is not a role; use Learner, Manager or Admin, or leave it blank for Learner"
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", None),
        ("fr", "fr"),
        ("FR", "fr"),
        (" de ", "de"),
        ("fr-FR", "fr"),
        ("fr_CA", "fr"),
        ("zh-Hans-CN", "zh"),
        ("French", "fr"),
        ("french", "fr"),
        ("GERMAN", "de"),
        ("Spanish", "es"),
        ("Castilian", "es"),
        ("Norwegian Bokmal", "nb"),
        ("Norwegian Bokmål", "nb"),
        ("English (United States)", "en"),
        ("Farsi", "fa"),
        ("Flemish", "nl"),
        ("Luba-Katanga", "lu"),
        ("iw", "he"),
        ("in", "id"),
    ],
)
def test_languages(value: str, code: str | None) -> None:
    assert clean(language=value).fields["language"] == code


@pytest.mark.parametrize("value", ["xx", "Klingon", "fra", "f", "fr-", "Français", "English; French"])
def test_unknown_languages(value: str) -> None:
    problem = only_error(language=value)
    assert problem.message == (
        f"'{value}' is not a language we know; use an ISO 639-1 code "
        "such as 'fr' or an English name such as 'French', or leave it "
        "blank for the tenant's default"
    )


def test_the_language_table_has_every_iso_639_1_code() -> None:
    assert len(LANGUAGE_NAMES) == 184
    assert all(len(code) == 2 and code.isascii() and code.islower() for code in LANGUAGE_NAMES)
    assert (LANGUAGE_NAMES["fr"], LANGUAGE_NAMES["zu"], LANGUAGE_NAMES["aa"]) == ("French", "Zulu", "Afar")


# -- teams --------------------------------------------------------------------------------------


def test_secondary_teams_are_split_trimmed_and_deduplicated() -> None:
    row = clean(primary_team="Sales", secondary_teams=" Ops ;; Marketing;ops; MARKET ING ; sales;  ;R  & D")
    assert row.fields["secondary_teams"] == ["Ops", "Marketing", "R & D"]


def test_team_whitespace_is_collapsed_to_one_space() -> None:
    row = clean(primary_team="\u00a0Sales\u2003\u2003EMEA ", secondary_teams="Big   Data")
    assert (row.fields["primary_team"], row.fields["secondary_teams"]) == ("Sales EMEA", ["Big Data"])


def test_a_secondary_team_name_is_limited_like_a_team() -> None:
    problem = only_error(secondary_teams=f"Ops;{'x' * 201}")
    assert problem.message.endswith("is 201 characters long; a team name allows at most 200")
    assert problem.column == "Secondary team"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Marketing", "marketing"),
        (" marketing ", "marketing"),
        ("Sales  EMEA", "salesemea"),
        ("SALES\tEMEA", "salesemea"),
        ("Équipe Ventes", "équipeventes"),
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),
        ("İstanbul", "istanbul"),
    ],
)
def test_team_key(name: str, key: str) -> None:
    assert team_key(name) == key


@settings(max_examples=200)
@given(st.text())
def test_team_key_is_idempotent(name: str) -> None:
    assert team_key(team_key(name)) == team_key(name)
    assert team_key(" ".join(name.split())) == team_key(name)


ascii_team = st.text(alphabet=string.ascii_letters + string.digits + " &-", max_size=30)


@settings(max_examples=200)
@given(ascii_team, st.sampled_from([" ", "  ", "\t", "\u00a0", "\r\n"]))
def test_team_key_ignores_case_and_spaces(name: str, space: str) -> None:
    assert team_key(name.swapcase()) == team_key(name.upper()) == team_key(name)
    assert team_key(space + space.join(name) + space) == team_key(name.replace(" ", ""))


# -- warnings: formulas and domain typos ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        '=HYPERLINK("http://x","y")',
        "@SUM(A1:A2)",
        "+A1",
        "-A1",
        "+1+cmd|' /C calc'!A0",
        "\t=1",
        "\r=1",
        "\t\r@x",
        " =1",
        "=",
        "@",
        "-Sales",
        "+33 1 23 ext. 4",
    ],
)
def test_formulas(value: str) -> None:
    assert looks_like_formula(value)
    assert neutralise_formula(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Jane",
        "-5",
        "+5",
        "-2.5%",
        "+33 1 23 45 67 89",
        "+1 (555) 123-4567",
        "-2+3",
        "05:30",
        "+05:30",
        "-",
        "--",
        "a=b",
        "jane@example.com",
        "Sales - EMEA",
        "'=1",
    ],
)
def test_not_formulas(value: str) -> None:
    assert not looks_like_formula(value)
    assert neutralise_formula(value) == value


def test_formula_looking_values_are_warnings_in_any_field() -> None:
    result = check(first_name="=Jane", email="+cmd@example.com", location="@home", role="Admin")
    assert result.row is not None
    assert [(p.column, p.value) for p in result.warnings] == [
        ("First name", "=Jane"),
        ("Email", "+cmd@example.com"),
        ("Location", "@home"),
    ]
    assert all("starts like a spreadsheet formula" in p.message for p in result.warnings)


@pytest.mark.parametrize(
    ("domain", "fix"),
    [
        ("gmial.com", "gmail.com"),
        ("gmai.com", "gmail.com"),
        ("gamil.com", "gmail.com"),
        ("gmail.con", "gmail.com"),
        ("gmail.co", "gmail.com"),
        ("GMAIL.CMO", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("hotmal.fr", "hotmail.fr"),
        ("outlok.com", "outlook.com"),
        ("yaho.fr", "yahoo.fr"),
        ("yahooo.com", "yahoo.com"),
        ("iclod.com", "icloud.com"),
        ("googlemial.com", "googlemail.com"),
        ("protonmai.com", "protonmail.com"),
        ("aol.con", "aol.com"),
        ("orange.rf", "orange.fr"),
        ("web.ed", "web.de"),
        ("wanado.fr", "wanadoo.fr"),
        ("hotmial.co.uk", "hotmail.co.uk"),
    ],
)
def test_domain_typos(domain: str, fix: str) -> None:
    assert email_domain_typo(domain) == fix


@pytest.mark.parametrize(
    "domain",
    [
        "gmail.com",
        "googlemail.com",
        "ymail.com",
        "mail.com",
        "email.com",
        "gmx.net",
        "me.com",
        "hotmail.be",
        "aon.com",
        "man.com",
        "ibm.com",
        "acme.com",
        "example.com",
        "live.nl",
        "mail.gmail.com",
        "gmail",
        "",
    ],
)
def test_domains_that_are_fine(domain: str) -> None:
    assert email_domain_typo(domain) is None


def test_a_domain_typo_is_a_warning_not_an_error() -> None:
    result = check(email=" Jane@GMIAL.com ")
    assert result.row is not None and result.row.email == "jane@gmial.com"
    assert result.warnings == [
        Problem(
            7,
            "Email",
            " Jane@GMIAL.com ",
            "'Jane@GMIAL.com': did you mean 'jane@gmail.com'? 'gmial.com' looks like a typo of 'gmail.com'",
        )
    ]


# -- properties -----------------------------------------------------------------------------------


any_cell = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "Manager", "fr", "=1", "a;b"]))
emailish = st.builds(
    lambda pad, local, domain: f"{pad}{local}@{domain}{pad}",
    st.sampled_from(["", " ", "\t", "\u00a0"]),
    st.text(alphabet="abcXYZ._-+09", min_size=1, max_size=10),
    st.sampled_from(["example.com", "EXAMPLE.ORG", "GMIAL.com", "bücher.de"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(any_cell, emailish), max_size=12))
def test_validate_row_never_raises(row: list[str]) -> None:
    result = validate_row(2, row, TEMPLATE)
    assert (result.row is None) == bool(result.errors)
    if result.row is not None:
        email = result.row.email
        assert email == email.strip() and email == email.lower()
        assert result.row.fields["role"] in (*Role, None)  # None: a blank cell
        assert set(result.row.fields) == set(COLUMNS) - {"email"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([*TEMPLATE_HEADERS, "Team", "E-mail", "", "Other"]), max_size=10),
    st.lists(st.one_of(any_cell, emailish), max_size=12),
)
def test_validate_row_never_raises_for_any_mapping(header: list[str], row: list[str]) -> None:
    mapping = map_header(header)
    result = validate_row(3, row, mapping)
    assert all(p.row == 3 for p in [*result.errors, *result.warnings])
    if result.row is not None:
        assert set(result.row.fields) <= set(mapping.fields)


# --- the keys: Employee ID and Previous email -------------------------------------------------

KEYED = map_header(["First name", "Last name", "Email", "Employee ID", "Previous email"])


def test_an_employee_id_is_kept_as_written_and_a_previous_address_lowered() -> None:
    result = validate_row(
        2, ["Dana", "Park", "Dana.Park@Acme.example", " 00123 ", " Dana.Cho@ACME.example"], KEYED
    )
    assert result.row == CleanRow(
        "dana.park@acme.example",
        {"first_name": "Dana", "last_name": "Park", "employee_id": "00123"},
        "dana.cho@acme.example",
    )


def test_a_previous_address_like_the_new_one_is_no_rename() -> None:
    result = validate_row(2, ["Dana", "Park", "dana@acme.example", "", "DANA@acme.example"], KEYED)
    assert result.row is not None and result.row.previous_email is None


def test_a_previous_address_must_be_an_address() -> None:
    result = validate_row(2, ["Dana", "Park", "dana@acme.example", "", "dana.cho"], KEYED)
    assert result.row is None
    assert [(e.column, e.value) for e in result.errors] == [("Previous email", "dana.cho")]
    assert "is not a valid e-mail address" in result.errors[0].message


def test_a_blank_id_is_an_error_only_when_people_are_matched_by_it() -> None:
    row = ["Dana", "Park", "dana@acme.example", "", ""]
    assert validate_row(2, row, KEYED).row is not None
    errors = validate_row(2, row, KEYED, id_required=True).errors
    assert [(e.column, e.message) for e in errors] == [
        (
            "Employee ID",
            "Employee ID is blank: people are matched by employee id, so every row needs one;"
            " fill it in (or match people by e-mail)",
        )
    ]
    no_column = validate_row(2, row[:3], map_header(["First name", "Last name", "Email"]), id_required=True)
    assert no_column.errors[0].message == "the file has no Employee ID column; add one"


def test_an_id_on_two_lines_is_refused() -> None:
    result = validate_row(2, ["Dana", "Park", "dana@acme.example", "E1\nE2", ""], KEYED)
    assert result.row is None and result.errors[0].column == "Employee ID"


def test_an_invalid_rows_keys_as_written() -> None:
    assert raw_keys(["", "", "not an address", " E7 ", " Old@Acme.example "], KEYED) == (
        "E7",
        "old@acme.example",
    )
    assert raw_keys(["", "", "x"], KEYED) == (None, None)
