"""A workbook checked before any reader opens it: which format it is, and that it is safe to read.

A workbook is a ZIP of XML parts (xlsx, xlsm, ods) or an OLE2 compound file
(xls, and any password-protected Office file). The reader, python-calamine,
inflates a whole sheet into memory, so everything that could make that
unbounded is refused here first, each with one sentence:

- too many ZIP entries, or declared uncompressed sizes over the limit;
- an entry that inflates to more than it declares (its CRC fails: Python's
  ``zipfile`` never reads past the declared size) — a ZIP bomb either way;
- an XML part with a DOCTYPE (entity bombs live there; spreadsheets never write one);
- a sheet whose used area, read from its cell references or its ODS
  repetitions, is over the row, column or cell limits;
- an encrypted (password-protected) file.

Each entry is streamed once through a bounded buffer, so the check's memory is flat.
"""

from __future__ import annotations

import re
import zipfile
from typing import BinaryIO

from core.errors import FileRejected
from core.intake.reading.source import ReadLimits
from core.intake.reading.workbook import PASSWORD_PROTECTED

XLSX, XLSM, ODS, XLS = "xlsx", "xlsm", "ods", "xls"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
# Office encrypts an xlsx into an OLE2 file holding these streams (names in UTF-16LE).
_ENCRYPTED_STREAMS = ("EncryptedPackage".encode("utf-16-le"), "EncryptionInfo".encode("utf-16-le"))
_CHUNK = 1024 * 1024
_OVERLAP = 4096  # carried between chunks so a tag cut in two is still seen
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
# xlsx: a cell with a value is an element that is not self-closing ("<c r="B2" s="1"/>" is a
# formatted empty cell, which the reader ignores, as it ignores formatted empty rows).
_FAR_COLUMN = re.compile(rb'<c r="([A-Z]{2,3})[0-9]+"[^>]*(?<!/)>')
_FAR_ROW = re.compile(rb'<(?:row r="|c r="[A-Z]{1,3})([0-9]{7,})"')
_ROW_TAG = b'<row r="'
# ods: a repeated cell or row that holds a value is expanded by the reader; empty ones are not.
_REPEATED_CELL = re.compile(rb'<table:table-cell[^>]*?number-columns-repeated="([0-9]+)"[^>]*>')
_REPEATED_ROW = re.compile(
    rb'<table:table-row[^>]*?number-rows-repeated="([0-9]+)"[^>]*>(.*?)</table:table-row>', re.S
)
_VALUE_TYPE = b"value-type="


def workbook_kind(prefix: bytes) -> str | None:
    """``"zip"`` or ``"ole2"`` when the file's first bytes are a workbook's container, else None."""
    if prefix.startswith(ZIP_MAGICS):
        return "zip"
    if prefix.startswith(OLE2_MAGIC):
        return "ole2"
    return None


def check_ole2(stream: BinaryIO, limits: ReadLimits) -> str:
    """Refuse a password-protected Office file; otherwise it is a legacy workbook (.xls).

    Reads the stream to its end: the caller seeks back.
    """
    tail = b""
    while chunk := stream.read(_CHUNK):
        window = tail + chunk
        if any(name in window for name in _ENCRYPTED_STREAMS):
            raise FileRejected(PASSWORD_PROTECTED)
        tail = window[-64:]
    return XLS


def check_zip(stream: BinaryIO, limits: ReadLimits) -> str | None:
    """The workbook format of a ZIP (xlsx, xlsm or ods), after checking it is safe; None if no workbook.

    Moves the stream's position: the caller seeks back.
    """
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise FileRejected(
            f"the file starts like a ZIP archive or Excel workbook but is damaged ({error}): save it again"
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_archive_entries:
            raise FileRejected(
                f"the file holds {len(infos):,} ZIP entries, more than the {limits.max_archive_entries:,} "
                "a workbook needs: is it a ZIP bomb? Save the sheet again as a new .xlsx"
            )
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_unpacked_bytes:
            raise FileRejected(_unpacks_to_more(limits))
        names = {info.filename for info in infos}
        fmt = _zip_format(archive, names)
        if fmt is None:
            return None
        for info in infos:
            _check_entry(archive, info, fmt, limits)
    return fmt


def _zip_format(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    small = "mimetype" in names and archive.getinfo("mimetype").file_size <= 100
    if small and archive.read("mimetype").strip() == ODS_MIMETYPE:
        return ODS
    if "xl/workbook.xml" in names:
        # Macros are never run: the reader takes the cached values and nothing is kept.
        return XLSM if "xl/vbaProject.bin" in names else XLSX
    if "xl/workbook.bin" in names:
        raise FileRejected(
            "the file is a binary Excel workbook (.xlsb): "
            "in Excel choose File › Save As › Excel Workbook (.xlsx)"
        )
    return None


def _check_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fmt: str, limits: ReadLimits) -> None:
    is_xml = info.filename.endswith((".xml", ".rels"))
    is_sheet = info.filename.startswith("xl/worksheets/") or (fmt == ODS and info.filename == "content.xml")
    extent = _Extent(limits)
    try:
        with archive.open(info) as part:
            tail = b""
            first = True
            while chunk := part.read(_CHUNK):
                window = tail + chunk
                if is_xml and first and _DOCTYPE.search(window):
                    raise FileRejected(
                        f"the workbook's part {info.filename} declares XML entities (a DOCTYPE), which "
                        "spreadsheet programs never write: it may be an entity bomb; save the sheet again"
                    )
                first = False
                if is_sheet:
                    extent.scan(window, fmt)
                tail = window[-_OVERLAP:]
    except zipfile.BadZipFile:
        # A CRC that fails after reading exactly the declared size: the entry holds more than it says.
        raise FileRejected(
            f"the workbook's part {info.filename} does not unpack to the size it declares "
            "(a ZIP bomb, or a damaged file): save the sheet again as a new workbook"
        ) from None
    except (RuntimeError, NotImplementedError, OSError, EOFError) as error:
        # RuntimeError: a ZIP-level password; NotImplementedError: an unknown compression.
        raise FileRejected(f"the workbook cannot be unpacked ({error}): save it again as .xlsx") from None


class _Extent:
    """The used area of one sheet, from the cell references that carry values."""

    def __init__(self, limits: ReadLimits) -> None:
        self._limits = limits
        self.rows = 0
        self.columns = 0

    def scan(self, window: bytes, fmt: str) -> None:
        if fmt == ODS:
            self._scan_ods(window)
        else:
            self._scan_xlsx(window)

    def _scan_xlsx(self, window: bytes) -> None:
        # Rows come in ascending order, so the last row tag of a chunk is its furthest;
        # row numbers of seven digits anywhere are caught even if out of order.
        last = window.rfind(_ROW_TAG)
        if last >= 0:
            digits = re.match(rb"[0-9]+", window[last + len(_ROW_TAG) :])
            if digits:
                self._rows(int(digits.group()))
        for match in _FAR_ROW.finditer(window):
            self._rows(int(match.group(1)))
        for match in _FAR_COLUMN.finditer(window):
            self._column(_column_index(match.group(1).decode()))

    def _scan_ods(self, window: bytes) -> None:
        for match in _REPEATED_CELL.finditer(window):
            if _VALUE_TYPE in match.group(0):
                self._column(int(match.group(1)))
        for match in _REPEATED_ROW.finditer(window):
            if _VALUE_TYPE in match.group(2):
                self._rows(int(match.group(1)))

    def _rows(self, rows: int) -> None:
        self.rows = max(self.rows, rows)
        if self.rows > self._limits.max_rows:
            raise FileRejected(
                f"a sheet of the workbook reaches row {self.rows:,}, beyond the {self._limits.max_rows:,} "
                "rows allowed: split it into smaller files"
            )
        self._cells()

    def _column(self, column: int) -> None:
        self.columns = max(self.columns, column)
        if self.columns > self._limits.max_columns:
            raise FileRejected(
                f"a sheet of the workbook has values in column {self.columns:,}, beyond the "
                f"{self._limits.max_columns} columns allowed: delete the unused columns"
            )
        self._cells()

    def _cells(self) -> None:
        cells = self.rows * max(self.columns, 26)
        if cells > self._limits.max_cells:
            raise FileRejected(
                f"a sheet of the workbook spans {self.rows:,} rows × {max(self.columns, 26)} columns, "
                f"more than the {self._limits.max_cells:,} cells allowed: delete the unused columns, "
                "or split it into smaller files"
            )


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index


def _unpacks_to_more(limits: ReadLimits) -> str:
    return (
        f"the workbook unpacks to more than {limits.max_unpacked_bytes / 1024**2:,.0f} MB "
        "(is it a ZIP bomb?): split it, or save only the sheet you need"
    )
