"""The options of an import, in one typed object that every surface builds once.

The command line (``producer.cli.options``), the HTTP API's query, the admins'
settings form and a scheduled source's saved settings each turn their own
input into an :class:`ImportOptions`; the review, the submission and the
recorded import all take that object. Its checks live here, with one
wording: an :class:`OptionError` names the option (``mode``, ``send_at``,
...) and says what is wrong, and a surface may spell the option its own way
(the command line says ``--send-at``).

Adding an option is a field here (with its text form in ``_PARSERS`` when it
is not a plain string), its click option in ``producer.cli.options``, and the
page that shows it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from core.errors import BulkImportError
from core.intake.mapping import check_choices
from core.vocabulary import (
    DEFAULT_BLANK_CELLS,
    DEFAULT_MODE,
    FILE_MODES,
    BlankCells,
    InviteOption,
    MatchKey,
    Mode,
)

MAX_EXTERNAL_ID_CHARS = 255
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off", ""})
_MAPPING_EXAMPLE = 'e.g. {"Given": "first_name", "Notes": null}'
E = TypeVar("E", bound=StrEnum)


class OptionError(BulkImportError):
    """An import option that cannot be carried out: ``option`` names it, ``reason`` says why."""

    def __init__(self, option: str, reason: str) -> None:
        self.option, self.reason = option, reason
        super().__init__(f"{option} {reason}")

    def spelled(self, name: str) -> str:
        """The message with the option spelled as a surface spells it (``--send-at``)."""
        return f"{name} {self.reason}"


def _member(kind: type[E], option: str, value: object, allowed: tuple[E, ...]) -> E:
    if isinstance(value, str):
        for member in allowed:
            if member == value:
                return member
    shown = "missing" if value is None else repr(value)
    raise OptionError(option, f"is {shown}: choose one of {', '.join(allowed)}")


@dataclass(frozen=True, kw_only=True)
class ImportOptions:
    """How an import takes its file: what the admin or the service chose, checked once.

    Strings are accepted for the enum fields (``mode="sync"``) and become
    their members. ``send_at`` may be naive: it is then read in the tenant's
    timezone when the import is recorded (:meth:`in_timezone`). ``mapping``
    is the admin's column choices (header → field name, None: ignore the
    column), over the tenant's remembered ones. ``sheet`` names a workbook's
    sheet (None: the first whose header matches). ``external_id`` is the
    caller's own reference, sent back in the import's status and events.
    ``match_by`` is how a row finds its stored person (``email`` or
    ``employee-id``); None: the tenant's remembered choice, else ``email``. An
    import given one remembers it for the tenant.
    """

    mode: Mode = DEFAULT_MODE
    blank_cells: BlankCells = DEFAULT_BLANK_CELLS
    invites: InviteOption = InviteOption.NONE
    send_at: datetime | None = None
    allow_mass_deactivation: bool = False
    mapping: Mapping[str, str | None] = field(default_factory=dict)
    sheet: str | None = None
    external_id: str | None = None
    match_by: MatchKey | None = None

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: the checked values replace the given ones
        set_field(self, "mode", _member(Mode, "mode", self.mode, FILE_MODES))
        set_field(
            self, "blank_cells", _member(BlankCells, "blank_cells", self.blank_cells, tuple(BlankCells))
        )
        set_field(self, "invites", _member(InviteOption, "invites", self.invites, tuple(InviteOption)))
        if self.match_by is not None:
            set_field(self, "match_by", _member(MatchKey, "match_by", self.match_by, tuple(MatchKey)))
        if (self.invites == InviteOption.AT) != (self.send_at is not None):
            raise OptionError("send_at", "is required with invites at, and only with it")
        set_field(self, "mapping", dict(self.mapping))
        check_choices(self.mapping)
        if self.external_id is not None and (
            not 1 <= len(self.external_id) <= MAX_EXTERNAL_ID_CHARS or not self.external_id.isprintable()
        ):
            raise OptionError(
                "external_id",
                f"must be 1 to {MAX_EXTERNAL_ID_CHARS} printable characters (your own reference)",
            )

    @classmethod
    def from_text(cls, values: Mapping[str, str]) -> ImportOptions:
        """The options from text (an HTTP query, a form, saved settings): absent or blank ones keep
        their defaults, names that are no option are ignored."""
        given: dict[str, Any] = {}
        for name in OPTION_NAMES:
            raw = values.get(name)
            if raw is None or (raw == "" and name != "allow_mass_deactivation"):
                continue
            given[name] = _PARSERS.get(name, _text)(name, raw)
        return cls(**given)

    def to_json(self) -> dict[str, Any]:
        """The options as JSON (a draft's or a source's saved settings); ``from_json`` reads it back."""
        data = dataclasses.asdict(self)
        data["send_at"] = self.send_at.isoformat() if self.send_at is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImportOptions:
        """Options saved by :meth:`to_json`."""
        values = {name: data[name] for name in OPTION_NAMES if name in data}
        if values.get("send_at") is not None:
            values["send_at"] = parse_time("send_at", values["send_at"])
        return cls(**values)

    def replace(self, **changes: Any) -> ImportOptions:
        """These options with some changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def in_timezone(self, timezone: str) -> ImportOptions:
        """These options with a naive ``send_at`` read in ``timezone`` (the tenant's)."""
        if self.send_at is None or self.send_at.tzinfo is not None:
            return self
        return self.replace(send_at=in_timezone(self.send_at, timezone))


def parse_time(option: str, value: str) -> datetime:
    """An ISO 8601 time; without an offset it stays naive (read later in the tenant's timezone)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise OptionError(option, f"{value!r} is not an ISO 8601 time, e.g. 2026-12-01T09:00+01:00") from None


def in_timezone(moment: datetime, timezone: str) -> datetime:
    """``moment``, read in ``timezone`` (an IANA name) when it has no offset of its own."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(timezone))


def _text(_option: str, value: str) -> str:
    return value


def _flag(option: str, value: str) -> bool:
    folded = value.strip().lower()
    if folded not in _TRUE | _FALSE:
        raise OptionError(option, f"must be true or false, not {value!r}")
    return folded in _TRUE


def _choices(option: str, value: str) -> dict[str, str | None]:
    """A JSON object of header → field name, or null to ignore the column."""
    try:
        choices = json.loads(value)
    except ValueError:
        raise OptionError(option, f"is not valid JSON: send an object, {_MAPPING_EXAMPLE}") from None
    if not isinstance(choices, dict):
        raise OptionError(option, f"must be a JSON object of header to field name, {_MAPPING_EXAMPLE}")
    for header, name in choices.items():
        if name is not None and not isinstance(name, str):
            raise OptionError(
                option, f"of {header!r} must be a field name (a string) or null to ignore it, not {name!r}"
            )
    return choices


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(ImportOptions))
_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "send_at": parse_time,
    "allow_mass_deactivation": _flag,
    "mapping": _choices,
}
