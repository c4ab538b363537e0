"""Match a file's header row to the template's fields.

Admins rarely upload our template untouched: they export from Google Workspace,
Microsoft Entra or an HR system and rename nothing. So a header matches a field
when, stripped of vendor decorations (``[Required]``, ``(optional)``, a trailing
``*``, Entra's trailing ``Required``) and normalised (case, accents, spaces and
punctuation ignored), it equals one of the field's aliases (listed with each
column in :mod:`worker.vocabulary`).

Deliberately *not* matched, because the column means something else:

- Google's ``Org Unit Path`` (``/Sales/EMEA``): an admin-policy container, not the
  team that dictates a manager; ``Department`` next to it is the team.
- Entra's ``Usage location``: a licensing country code, not where someone works.
- ``Manager Email`` / ``Supervisor Email``: managers are derived from primary teams.
- ``Preferred Name``: ambiguous (a first name? a whole name?); the legal or plain
  first name is taken instead.
- Entra's ``userType`` / HR ``Employee Type``: Member/Guest or contract type, not
  a platform role.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

from producer.fields import FIELDS, FIELDS_BY_NAME, REQUIRED_FIELDS

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


def normalise(text: str) -> str:
    """Fold ``text`` for forgiving comparison: NFKC, case-folded, accents dropped,
    and nothing kept but letters and digits (``"E-mail Address"`` → ``"emailaddress"``)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in folded if ch.isalnum() and not unicodedata.combining(ch))


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for field in FIELDS:
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

    def header_of(self, field: str) -> str:
        """The file's header text for ``field``, or the template header when unmapped."""
        header = self._headers.get(field)
        return FIELDS_BY_NAME[field].header if header is None else header

    @cached_property
    def _headers(self) -> dict[str, str]:
        # Asked several times for every row validated: a search of ``matched`` each time showed in profiles.
        headers: dict[str, str] = {}
        for header, name in self.matched.items():
            headers.setdefault(name, header)
        return headers


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


def map_header(header: list[str]) -> ColumnMapping:
    """Match each header cell to a field.

    The first column matching a field wins; later ones are reported in
    ``duplicates`` and ignored. Every header lands in exactly one of
    ``matched``, ``unmatched`` and ``duplicates``. Blank headers are shown as
    ``(column N)``, N counting from 1.
    """
    fields: dict[str, int] = {}
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    duplicates: list[str] = []
    for index, raw in enumerate(header):
        shown = raw.replace("\ufeff", "").strip() or f"(column {index + 1})"
        field = _field_for(raw)
        if field is None:
            unmatched.append(shown)
        elif field in fields:
            duplicates.append(shown)
        else:
            fields[field] = index
            matched[shown] = field
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    hints: dict[str, str] = {}
    for name in missing:
        hint = _closest(name, unmatched)
        if hint is not None:
            hints[name] = hint
    return ColumnMapping(fields, matched, unmatched, missing, hints, duplicates)
