"""Check one row's cells and turn them into a clean row, or say what is wrong.

Pure functions, no I/O: the producer calls `validate_row` for every data row.
Checks that need other rows (duplicate e-mails, several managers for a team,
team spelling variants, the tenant's usual domain) are done set-based in the
database; `team_key` is the team identity they share with this module.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from core.columns import (
    COLUMNS_BY_NAME,
    EMPLOYEE_ID,
    PREVIOUS_EMAIL,
    PRIMARY_TEAM,
    SECONDARY_TEAM_SEPARATOR,
    VALUE_COLUMNS,
    Column,
)
from core.intake.languages import LANGUAGE_NAMES, language_code
from core.intake.mapping import ColumnMapping
from core.intake.webmail import email_domain_typo
from core.vocabulary import DEFAULT_ROLE, ColumnKind, Role

__all__ = [
    "LANGUAGE_NAMES",
    "CleanRow",
    "Problem",
    "RowResult",
    "email_domain_typo",
    "looks_like_formula",
    "neutralise_formula",
    "raw_keys",
    "team_key",
    "validate_row",
]

# RFC 5321 limits, which the library enforces on its full path.
_MAX_LOCAL_PART, _MAX_ADDRESS = 64, 254
_ASCII_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HARMLESS_AFTER_SIGN = re.compile(r"[0-9\s.,()/%:+-]*")


@dataclass(frozen=True)
class Problem:
    """One error or warning about one cell, as the review and error file show it."""

    row: int
    column: str
    value: str
    message: str


@dataclass(frozen=True)
class CleanRow:
    """A row that passed every check, its values ready to store.

    ``previous_email``: the address the row's person had (a rename), when the
    file has the column and it differs from ``email``; never stored.
    """

    email: str
    fields: dict[str, object]
    previous_email: str | None = None


@dataclass(frozen=True)
class RowResult:
    """The outcome for one row: a clean row when there is no error, and every problem."""

    row: CleanRow | None
    errors: list[Problem]
    warnings: list[Problem]


def team_key(name: str) -> str:
    """The identity of a team: lower-cased with all whitespace removed.

    Paired with the SQL ``lower(regexp_replace(name, '\\s', '', 'g'))`` that the
    set-based checks use; keep the two in step. They agree on every team name
    `validate_row` produces, whose only whitespace is U+0020, on a database
    whose LC_CTYPE is a UTF-8 locale (checked against C.UTF-8; in the plain C
    locale PostgreSQL lowers ASCII only). Letters are lowered one by one with
    their simple mapping, as PostgreSQL does, not with ``str.lower``'s context
    rules (final sigma) or expansions (``İ`` → ``i̇``).
    """
    joined = "".join(name.split())
    if joined.isascii():  # the usual case, and the same result, a good deal faster
        return joined.lower()
    return "".join(char.lower()[0] for char in joined)


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet opening this cell would run it as a formula.

    Leading whitespace is ignored (tab and CR are the classic injection
    prefixes; spreadsheets that trim on import expose the rest). The cell is a
    formula when it then starts with ``=`` or ``@``, or with ``+`` or ``-``
    followed by anything but digits, spaces and ``. , ( ) / % : + -``: those
    cannot name a function or a cell, so ``-5`` and ``+33 1 23 45 67 89`` are data.
    """
    text = value.lstrip()
    if not text:
        return False
    if text[0] in "=@":
        return True
    return text[0] in "+-" and _HARMLESS_AFTER_SIGN.fullmatch(text, 1) is None


def neutralise_formula(value: str) -> str:
    """``value`` with a leading ``'`` when it looks like a formula, for any CSV we write."""
    return f"'{value}" if looks_like_formula(value) else value


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for a message: control characters escaped, long text cut."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)
    return f"'{text[:limit]}…'" if len(text) > limit else f"'{text}'"


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> tuple[str, str] | None:
    """The normalised and ASCII forms of ``domain``, or None when it is not valid."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return result.domain, result.ascii_domain


def _normalised_email(text: str) -> str:
    """The library's normalised form of ``text``; raises `EmailNotValidError`.

    Checking a domain costs three quarters of a row's time and a file repeats a
    few domains, so an address with a plain ASCII local part reuses its domain's
    cached result; anything else (and every error) goes through the full check.
    """
    local, _, domain = text.rpartition("@")
    if len(local) <= _MAX_LOCAL_PART and _ASCII_LOCAL_PART.fullmatch(local):
        checked = _checked_domain(domain)
        if checked is not None and len(local) + 1 + len(checked[1]) <= _MAX_ADDRESS:
            return f"{local}@{checked[0]}"
    return validate_email(text, check_deliverability=False, allow_smtputf8=True).normalized


def _reason(error: EmailNotValidError) -> str:
    text = str(error).rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


class _RowChecker:
    """Collects the problems of one row, in file column order, while cells are cleaned."""

    def __init__(self, line: int, cells: list[str], mapping: ColumnMapping, id_required: bool) -> None:
        self.line, self.cells, self.mapping, self.id_required = line, cells, mapping, id_required
        self.errors: list[tuple[int, Problem]] = []
        self.warnings: list[tuple[int, Problem]] = []

    def raw(self, field: str) -> str:
        index = self.mapping.fields.get(field)
        return self.cells[index] if index is not None and index < len(self.cells) else ""

    def _problem(self, field: str, message: str) -> tuple[int, Problem]:
        problem = Problem(self.line, self.mapping.header_of(field), self.raw(field), message)
        return self.mapping.fields.get(field, -1), problem

    def error(self, field: str, message: str) -> None:
        self.errors.append(self._problem(field, message))

    def errors_for(self, field: str) -> bool:
        """Whether ``field``'s cell has an error already."""
        header = self.mapping.header_of(field)
        return any(problem.column == header for _, problem in self.errors)

    def warn(self, field: str, message: str) -> None:
        self.warnings.append(self._problem(field, message))

    def text(self, field: str, *, required: bool = False, collapse: bool = False) -> str | None:
        """The trimmed text, or None; NFC, so text from macOS compares equal."""
        value = self.raw(field)
        text = unicodedata.normalize("NFC", value.strip())
        if text and _CONTROL.search(text) is None and len(text) <= COLUMNS_BY_NAME[field].max_length:
            # The usual cell, with no problem to name: nothing else to look up.
            return " ".join(text.split()) if collapse else text
        header = self.mapping.header_of(field)
        if not text:
            if required and field not in self.mapping.fields:
                self.error(field, f"the file has no {header} column; add one")
            elif required:
                self.error(field, f"{header} is required but blank; fill it in")
            return None
        if (control := _CONTROL.search(text)) is not None:
            if control.group() in "\r\n":
                self.error(field, f"{_shown(value)} contains a line break; {header} must be on one line")
            else:
                self.error(
                    field,
                    f"{_shown(value)} contains a control character (U+{ord(control.group()):04X}); remove it",
                )
            return None
        if collapse:
            text = " ".join(text.split())
        if len(text) > (limit := COLUMNS_BY_NAME[field].max_length):
            self.error(
                field, f"{_shown(value)} is {len(text)} characters long; {header} allows at most {limit}"
            )
            return None
        return text


def _check_email(check: _RowChecker, field: str = "email") -> str | None:
    text = check.text(field, required=field == "email")
    if text is None:
        return None
    try:
        email = _normalised_email(text).lower()
    except EmailNotValidError as error:
        check.error(field, f"{_shown(text)} is not a valid e-mail address: {_reason(error)}")
        return None
    local, _, domain = email.rpartition("@")
    if field == "email" and (suggestion := email_domain_typo(domain)) is not None:
        check.warn(
            field,
            f"{_shown(text)}: did you mean '{local}@{suggestion}'? "
            f"'{domain}' looks like a typo of '{suggestion}'",
        )
    return email


def _check_id(check: _RowChecker, column: Column) -> str | None:
    """An identifier, kept exactly as written (trimmed); required when people are matched by it."""
    text = check.text(column.name)
    if text is None and check.id_required and not check.errors_for(column.name):
        header = check.mapping.header_of(column.name)
        if column.name not in check.mapping.fields:
            check.error(column.name, f"the file has no {header} column; add one")
        else:
            check.error(
                column.name,
                f"{header} is blank: people are matched by employee id, so every row needs one;"
                " fill it in (or match people by e-mail)",
            )
    return text


def _check_secondary_teams(check: _RowChecker, column: Column, primary: object) -> list[str]:
    text = check.text(column.name)
    seen = {team_key(primary)} if isinstance(primary, str) else set()
    teams: list[str] = []
    limit = COLUMNS_BY_NAME[PRIMARY_TEAM].max_length
    for part in (text or "").split(SECONDARY_TEAM_SEPARATOR):
        team = " ".join(part.split())
        if len(team) > limit:
            check.error(
                column.name,
                f"the team {_shown(team)} is {len(team)} characters long; a team name allows at most {limit}",
            )
        elif team and team_key(team) not in seen:
            seen.add(team_key(team))
            teams.append(team)
    return teams


def _check_role(check: _RowChecker, column: Column) -> str | None:
    # A blank cell stays None, as for the other columns: the worker stores the
    # default for it, or keeps the stored role when the import keeps blank cells.
    role = check.raw(column.name).strip().casefold()
    if not role:
        return None
    if role in tuple(Role):
        return role
    allowed = ", ".join(r.capitalize() for r in tuple(Role)[:-1]) + f" or {tuple(Role)[-1].capitalize()}"
    check.error(
        column.name,
        f"{_shown(check.raw(column.name))} is not a role; use {allowed}, "
        f"or leave it blank for {DEFAULT_ROLE.capitalize()}",
    )
    return DEFAULT_ROLE


def _check_language(check: _RowChecker, column: Column) -> str | None:
    text = check.raw(column.name).strip()
    if not text:
        return None
    if (code := language_code(text)) is not None:
        return code
    check.error(
        column.name,
        f"{_shown(text)} is not a language we know; use an ISO 639-1 "
        "code such as 'fr' or an English name such as 'French', or leave it "
        "blank for the tenant's default",
    )
    return None


def _check_text(check: _RowChecker, column: Column) -> str | None:
    return check.text(column.name, required=column.required)


def _check_team(check: _RowChecker, column: Column) -> str | None:
    return check.text(column.name, required=column.required, collapse=True)


# How each kind of column (core.vocabulary.ColumnKind) is checked and cleaned; TEAMS needs
# the primary team and is checked after the others.
_CHECKS: dict[ColumnKind, Callable[[_RowChecker, Column], object]] = {
    ColumnKind.TEXT: _check_text,
    ColumnKind.TEAM: _check_team,
    ColumnKind.ROLE: _check_role,
    ColumnKind.LANGUAGE: _check_language,
    ColumnKind.ID: _check_id,
}


def validate_row(
    line: int, cells: list[str], mapping: ColumnMapping, *, id_required: bool = False
) -> RowResult:
    """Check one data row; ``line`` is the row number a spreadsheet shows.

    Every problem of the row is listed, in the file's column order. ``row`` is
    None when there is any error. Required fields are checked even when their
    column is missing (the review refuses such a file anyway); other fields are
    in ``CleanRow.fields`` only when the file has their column.
    ``id_required``: people are matched by employee id, so a row without an
    Employee ID is an error.
    """
    check = _RowChecker(line, cells, mapping, id_required)
    email = _check_email(check)
    previous = _check_email(check, PREVIOUS_EMAIL) if PREVIOUS_EMAIL in mapping.fields else None
    values: dict[str, object] = {
        column.name: _CHECKS[column.kind](check, column)
        for column in VALUE_COLUMNS
        if column.kind != ColumnKind.TEAMS
    }
    # After the primary team: a secondary team repeating it is dropped.
    for column in VALUE_COLUMNS:
        if column.kind == ColumnKind.TEAMS:
            values[column.name] = _check_secondary_teams(check, column, values[PRIMARY_TEAM])
    for field, index in mapping.fields.items():
        if index < len(cells) and looks_like_formula(cells[index]):
            check.warn(
                field,
                f"{_shown(cells[index])} starts like a spreadsheet formula; "
                "it is stored as text, check that it is what you meant",
            )
    errors = [problem for _, problem in sorted(check.errors, key=lambda pair: pair[0])]
    warnings = [problem for _, problem in sorted(check.warnings, key=lambda pair: pair[0])]
    present = {field: value for field, value in values.items() if field in mapping.fields}
    if email is None or errors:
        return RowResult(None, errors, warnings)
    return RowResult(CleanRow(email, present, previous if previous != email else None), errors, warnings)


def raw_keys(cells: list[str], mapping: ColumnMapping) -> tuple[str | None, str | None]:
    """An invalid row's Employee ID (trimmed) and previous address (trimmed, lower-cased), as
    written: the sweep counts the people a row names as in the file, whatever else is wrong."""
    keys = []
    for field in (EMPLOYEE_ID, PREVIOUS_EMAIL):
        index = mapping.fields.get(field)
        text = cells[index].strip() if index is not None and index < len(cells) else ""
        keys.append((text if field == EMPLOYEE_ID else text.lower()) or None)
    return keys[0], keys[1]
