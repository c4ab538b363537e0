"""Match a file's header row to the template's fields.

Admins rarely upload our template untouched: they export from Google Workspace,
Microsoft Entra or an HR system and rename nothing. So a header matches a field
when, stripped of vendor decorations (``[Required]``, ``(optional)``, a trailing
``*``, Entra's trailing ``Required``) and normalised (case, accents, spaces and
punctuation ignored), it equals one of the field's aliases (listed with each
column in :mod:`core.columns`).

Deliberately *not* matched, because the column means something else:

- Google's ``Org Unit Path`` (``/Sales/EMEA``): an admin-policy container, not the
  team that dictates a manager; ``Department`` next to it is the team.
- Entra's ``Usage location``: a licensing country code, not where someone works.
- ``Manager Email`` / ``Supervisor Email``: managers are derived from primary teams.
- ``Preferred Name``: ambiguous (a first name? a whole name?); the legal or plain
  first name is taken instead.
- Entra's ``userType`` / HR ``Employee Type``: Member/Guest or contract type, not
  a platform role.

An admin's *choices* override the matching for the headers they name: a field
for a column nothing matched (or one matched wrongly), or "ignore" for a column
that must not be read. The errors file we write (``Row``, the original header,
``Reason``) is meant to be fixed and uploaded again, so its own first and last
columns are ignored without being asked.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from core.columns import COLUMNS, COLUMNS_BY_NAME, REQUIRED_COLUMNS
from core.errors import BulkImportError

# Below this length an alias is too generic to suggest from ("sn" is close to "SSN").
_HINT_MIN_ALIAS_LENGTH = 5
_HINT_CUTOFF = 0.6
# Longer text is no misspelt header, and comparing it would cost seconds.
_HINT_MAX_HEADER_LENGTH = 100
# Someone else's details: "Manager Email" is close to "Primary Email" but would
# be the wrong column to suggest for a person's own e-mail.
_NEVER_HINTED = ("manager", "supervisor", "reportsto", "reportingto")

_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_GROUPS = re.compile(r"\[[^\[\]]*\]|\([^()]*\)")
_MARKER_WORDS = frozenset({"required", "optional"})
# How an admin says "ignore this column" at the command line (``--map "Notes=ignore"``).
IGNORE = "ignore"
# The first and last columns of the errors file (producer.reports.write_failed_rows).
ERRORS_FILE_FIRST, ERRORS_FILE_LAST = "Row", "Reason"


def normalise(text: str) -> str:
    """Fold ``text`` for forgiving comparison: NFKC, case-folded, accents dropped,
    and nothing kept but letters and digits (``"E-mail Address"`` → ``"emailaddress"``)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in folded if ch.isalnum() and not unicodedata.combining(ch))


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for field in COLUMNS:
        # Aliases are compared after `normalise`, so "e-mail", "E Mail" and "email" are one.
        for alias in (field.name, field.header, *field.aliases):
            key = normalise(alias)
            if index.setdefault(key, field.name) != field.name:
                raise ValueError(f"alias {alias!r} names both {index[key]} and {field.name}")
    return index


_ALIAS_INDEX = _build_alias_index()


@dataclass(frozen=True)
class ColumnMapping:
    """How one header row maps onto the template's fields."""

    fields: dict[str, int]
    matched: dict[str, str]
    unmatched: list[str]
    missing_required: list[str]
    hints: dict[str, str]
    duplicates: list[str]
    ignored: list[str] = dataclasses.field(default_factory=list)
    # The admin's choices that applied, by the file's header: a field, or None for "ignore".
    chosen: dict[str, str | None] = dataclasses.field(default_factory=dict)

    def header_of(self, field: str) -> str:
        """The file's header text for ``field``, or the template header when unmapped."""
        header = self._headers.get(field)
        return COLUMNS_BY_NAME[field].header if header is None else header

    @cached_property
    def _headers(self) -> dict[str, str]:
        # Asked several times for every row validated: a search of ``matched`` each time showed in profiles.
        headers: dict[str, str] = {}
        for header, name in self.matched.items():
            headers.setdefault(name, header)
        return headers


def header_key(header: str) -> str:
    """The key a choice for ``header`` is known by: its ``normalise``d text (the text
    itself when nothing is left of it, so that ``#`` and ``-`` stay apart)."""
    return normalise(header) or header.strip()


def check_choices(choices: Mapping[str, str | None]) -> dict[str, str | None]:
    """Refuse a choice of an unknown field or two conflicting choices for one header;
    return the choices keyed by :func:`header_key`."""
    by_key: dict[str, str | None] = {}
    headers: dict[str, str] = {}
    for header, name in choices.items():
        if name is not None and name not in COLUMNS_BY_NAME:
            raise BulkImportError(
                f"column {header!r}: {name!r} is not a field: choose one of {', '.join(COLUMNS_BY_NAME)},"
                " or ignore the column"
            )
        key = header_key(header)
        if key in by_key and by_key[key] != name:
            raise BulkImportError(
                f"columns {headers[key]!r} and {header!r} are one column with two choices: keep one"
            )
        by_key[key], headers[key] = name, header
    return by_key


def _candidates(header: str) -> list[str]:
    """Normalised forms to look up, best first: Entra's bracketed attribute
    (``Job title [jobTitle]``) is the most precise, then the undecorated text."""
    text = unicodedata.normalize("NFKC", header.replace("\ufeff", ""))
    base = _GROUPS.sub(" ", text).strip()
    # Peel "*" and a trailing "Required" (Entra: "Name [displayName] Required").
    while True:
        peeled = base.rstrip("* \t")
        words = peeled.rsplit(None, 1)
        if len(words) == 2 and words[1].casefold() in _MARKER_WORDS:
            peeled = words[0]
        if peeled == base:
            break
        base = peeled
    forms = [normalise(inner) for inner in _BRACKETED.findall(text)]
    forms.append(normalise(base))
    return [form for form in forms if form]


def _field_for(header: str) -> str | None:
    for form in _candidates(header):
        if form in _ALIAS_INDEX:
            return _ALIAS_INDEX[form]
    return None


def _closest(field: str, headers: list[str]) -> str | None:
    """The header most like one of ``field``'s aliases, if any is close enough."""
    aliases = [
        key for key, name in _ALIAS_INDEX.items() if name == field and len(key) >= _HINT_MIN_ALIAS_LENGTH
    ]
    best, best_ratio = None, _HINT_CUTOFF
    for header in headers:
        if any(word in normalise(header) for word in _NEVER_HINTED):
            continue
        for form in _candidates(header):
            if len(form) > _HINT_MAX_HEADER_LENGTH:
                continue
            for alias in aliases:
                ratio = difflib.SequenceMatcher(None, form, alias).ratio()
                if ratio >= best_ratio and (best is None or ratio > best_ratio):
                    best, best_ratio = header, ratio
    return best


def shown_headers(header: list[str]) -> list[str]:
    """Each header cell as reported: stripped, a blank one as ``(column N)``."""
    return [raw.replace("\ufeff", "").strip() or f"(column {index + 1})" for index, raw in enumerate(header)]


def _choices_by_column(shown: list[str], choices: Mapping[str, str | None]) -> dict[int, str | None]:
    """Each chosen column's choice, by position; a choice for a header the file lacks is refused."""
    by_key = check_choices(choices)
    keys = [header_key(text) for text in shown]
    absent = [header for header in choices if header_key(header) not in keys]
    if absent:
        raise BulkImportError(
            f"the file has no column {absent[0]!r} to map: its columns are {', '.join(shown)};"
            " check the spelling or drop the choice"
        )
    owners: dict[str, str] = {}
    for header, name in choices.items():
        if name is not None and header_key(owners.setdefault(name, header)) != header_key(header):
            raise BulkImportError(
                f"columns {owners[name]!r} and {header!r} are both chosen for {name!r}:"
                " choose one, and ignore or map the other"
            )
    return {index: by_key[key] for index, key in enumerate(keys) if key in by_key}


def _is_errors_file_column(shown: list[str], index: int) -> bool:
    if len(shown) < 2:
        return False
    return (index == 0 and shown[0] == ERRORS_FILE_FIRST) or (
        index == len(shown) - 1 and shown[index] == ERRORS_FILE_LAST
    )


def map_header(header: list[str], choices: Mapping[str, str | None] | None = None) -> ColumnMapping:
    """Match each header cell to a field, the admin's ``choices`` first.

    ``choices`` maps a header's text (as shown; compared by ``normalise``) to a
    field name, or to None to ignore the column; a choice of a field, of two
    headers for one field, or for a header the file does not have raises
    :class:`~core.errors.BulkImportError` (filter remembered choices to the
    file's headers first). The errors file's own ``Row`` (first) and
    ``Reason`` (last) columns are ignored unless chosen.

    A chosen column wins over one matching by its name; otherwise the first
    column matching a field wins and later ones are reported in ``duplicates``.
    Every header lands in exactly one of ``matched``, ``unmatched``,
    ``duplicates`` and ``ignored``. Blank headers are shown as ``(column N)``,
    N counting from 1.
    """
    shown = shown_headers(header)
    chosen_at = _choices_by_column(shown, choices or {})
    fields = {name: index for index, name in reversed(chosen_at.items()) if name is not None}
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    duplicates: list[str] = []
    ignored: list[str] = []
    chosen: dict[str, str | None] = {}
    for index, raw in enumerate(header):
        text = shown[index]
        if index in chosen_at:
            name = chosen.setdefault(text, chosen_at[index])
        elif _is_errors_file_column(shown, index):
            name = None
        else:
            name = _field_for(raw)
            if name is None:
                unmatched.append(text)
                continue
        if name is None:
            ignored.append(text)
        elif fields.setdefault(name, index) != index:
            duplicates.append(text)
        else:
            matched[text] = name
    missing = [name for name in REQUIRED_COLUMNS if name not in fields]
    hints: dict[str, str] = {}
    for name in missing:
        hint = _closest(name, unmatched)
        if hint is not None:
            hints[name] = hint
    return ColumnMapping(fields, matched, unmatched, missing, hints, duplicates, ignored, chosen)
