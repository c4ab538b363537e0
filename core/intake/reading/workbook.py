"""A workbook's sheet read as rows, exactly as the admin sees them: :class:`WorkbookSource`.

python-calamine reads xlsx, xlsm, ods and xls; it gives each cell's value (a
formula's cached value, never its text), dates already converted with the
workbook's own 1900 or 1904 epoch, and a sheet trimmed to the cells that hold
values (formatted empty cells and rows, and a "dimension" of a million rows,
count for nothing). :func:`cell_text` turns each value into the text the
spreadsheet shows; the rows then go through the same header detection and
limits as a CSV file. The archive was checked beforehand (:mod:`.archive`).
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from typing import BinaryIO

from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook, PasswordError, SheetTypeEnum

from core.errors import FileRejected
from core.intake.mapping import map_header
from core.intake.reading.dialect import count_preamble, is_blank, width
from core.intake.reading.source import ReadLimits, RowSource, SourceRow

__all__ = ["WorkbookSource", "cell_text", "open_workbook"]

_HEADER_SEARCH_ROWS = 30  # non-blank rows weighed for the preamble, as for a CSV's prefix
_LARGEST_EXACT_FLOAT = 2**53
CellValue = int | float | str | bool | datetime.date | datetime.datetime | datetime.time | datetime.timedelta


def cell_text(value: CellValue) -> str:
    """The text a spreadsheet shows for a cell, in a form that does not depend on the locale.

    Whole numbers without ``.0``, other numbers to 15 significant digits (Excel's
    precision), dates and times in ISO 8601, booleans as ``TRUE``/``FALSE``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: a bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _LARGEST_EXACT_FLOAT:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, datetime.datetime):  # before date: a datetime is a date
        # Serial numbers are fractions of a day; a float's error lands a microsecond off.
        rounded = (value + datetime.timedelta(microseconds=500_000)).replace(microsecond=0)
        return rounded.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    seconds = round(value.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"


class WorkbookSource(RowSource):
    """One sheet of a workbook, with the same interface as :class:`~core.intake.reading.CsvSource`.

    ``sheet`` is the sheet read and ``other_sheets`` the rest; ``encoding`` and
    ``delimiter`` are None (a workbook has neither).
    """

    encoding: str | None = None
    delimiter: str | None = None

    def __init__(
        self, *, fmt: str, sheet: CalamineSheet, other_sheets: list[str], limits: ReadLimits
    ) -> None:
        """Read up to the header of ``sheet``; FileRejected if it has none."""
        self.format = fmt
        self.sheet = sheet.name
        self.other_sheets = other_sheets
        self.preamble: list[str] = []
        self.blank_rows = 0
        self._limits = limits
        first_row = (sheet.start or (0, 0))[0] + 1
        records = self._read_records(sheet.iter_rows(), first_row)
        # The rows read to find the header are replayed after it, then the rest follow.
        read = list(_first_non_blank(records, _HEADER_SEARCH_ROWS))
        non_blank = [record for _, record in read if not is_blank(record)]
        if not non_blank:
            raise FileRejected(
                f"no header row found on sheet {self.sheet!r}: its first row must hold the column names "
                "(First name, Last name, Email, …)"
            )
        skip = count_preamble(non_blank)
        self.preamble = [", ".join(record[: width(record)]) for record in non_blank[:skip]]
        position = [i for i, (_, record) in enumerate(read) if not is_blank(record)][skip]
        self.header_row, header = read[position]
        self.header = header[: width(header)]
        self._rest: Iterator[tuple[int, list[str]]] = itertools.chain(read[position + 1 :], records)
        if len(self.header) > limits.max_columns:
            raise FileRejected(
                f"the header on row {self.header_row} of sheet {self.sheet!r} has {len(self.header)} "
                f"columns, more than the {limits.max_columns} allowed: delete the unused columns"
            )

    def close(self) -> None:
        """Release the sheet (the workbook was read into memory and closed when opened)."""
        self._rest = iter(())

    def _iter_rows(self) -> Iterator[SourceRow]:
        """The non-blank data rows, each cut or padded to the header's width.

        Cells past the header's width are kept only when they hold something,
        as a CSV keeps them.
        """
        header_width = len(self.header)
        for line, record in self._rest:
            if is_blank(record):
                self.blank_rows += 1
                continue
            del record[max(header_width, width(record)) :]
            if len(record) < header_width:
                record.extend([""] * (header_width - len(record)))
            yield SourceRow(line, record)

    def _read_records(
        self, cells: Iterator[list[CellValue]], first_row: int
    ) -> Iterator[tuple[int, list[str]]]:
        limit = self._limits.max_field_chars
        for line, values in enumerate(cells, start=first_row):
            record = [cell_text(value) for value in values]
            for column, text in enumerate(record, start=1):
                if len(text) > limit:
                    raise FileRejected(
                        f"row {line}, column {column} of sheet {self.sheet!r} holds more than "
                        f"{limit:,} characters: shorten it"
                    )
            yield line, record


def _first_non_blank(records: Iterator[tuple[int, list[str]]], count: int) -> Iterator[tuple[int, list[str]]]:
    """Records up to and including the ``count``-th non-blank one."""
    seen = 0
    for line, record in records:
        yield line, record
        if not is_blank(record):
            seen += 1
            if seen >= count:
                return


def open_workbook(
    stream: BinaryIO, fmt: str, *, limits: ReadLimits, sheet: str | None = None
) -> WorkbookSource:
    """Read the workbook in ``stream`` (checked by :mod:`.archive`) and open the sheet to import.

    ``sheet`` names it (exactly, or else ignoring case); without it, the first
    worksheet whose header matches at least one of our columns is used, or else
    the first that holds anything, so that the review can say what is missing.
    """
    try:
        book = CalamineWorkbook.from_filelike(stream)
    except PasswordError:
        raise FileRejected(PASSWORD_PROTECTED) from None
    except CalamineError as error:
        raise FileRejected(
            f"the {KINDS.get(fmt, fmt)} cannot be read ({error}): open it and save it again"
        ) from None
    with book:
        names = [m.name for m in book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        if sheet is not None:
            named = _open_sheet(book, _named_sheet(names, sheet), fmt, names, limits, skip_empty=False)
            assert named is not None
            return named
        fallback: WorkbookSource | None = None
        for name in names:
            source = _open_sheet(book, name, fmt, names, limits, skip_empty=True)
            if source is None:
                continue
            if map_header(source.header).matched:
                return source
            fallback = fallback or source
        if fallback is None:
            raise FileRejected("the workbook has no data on any sheet: nothing to import")
        return fallback


KINDS = {
    "xlsx": "Excel workbook (.xlsx)",
    "xlsm": "Excel workbook (.xlsm)",
    "ods": "OpenDocument spreadsheet (.ods)",
    "xls": "legacy Excel workbook (.xls)",
}
PASSWORD_PROTECTED = (
    "the workbook is protected by a password: open it, remove the password "
    "(File › Info › Protect Workbook › Encrypt with Password) and save it again"
)


def _open_sheet(
    book: CalamineWorkbook, name: str, fmt: str, names: list[str], limits: ReadLimits, *, skip_empty: bool
) -> WorkbookSource | None:
    """The sheet opened up to its header; None for an empty sheet when ``skip_empty``."""
    try:
        sheet = book.get_sheet_by_name(name)
    except PasswordError:
        raise FileRejected(PASSWORD_PROTECTED) from None
    except CalamineError as error:
        raise FileRejected(
            f"sheet {name!r} of the workbook cannot be read ({error}): save it again"
        ) from None
    if sheet.height > limits.max_rows or sheet.height * sheet.width > limits.max_cells:
        raise FileRejected(
            f"sheet {name!r} spans {sheet.height:,} rows × {sheet.width:,} columns, over the limits "
            f"({limits.max_rows:,} rows, {limits.max_cells:,} cells): split it into smaller files"
        )
    if skip_empty and sheet.height == 0:
        return None
    others = [other for other in names if other != name]
    return WorkbookSource(fmt=fmt, sheet=sheet, other_sheets=others, limits=limits)


def _named_sheet(names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    folded = [name for name in names if name.casefold() == wanted.strip().casefold()]
    if folded:
        return folded[0]
    raise FileRejected(f"the workbook has no sheet named {wanted!r}: its sheets are {', '.join(names)}")
