"""Workbooks read by content, their cells as the admin sees them, and hostile workbooks refused.

Workbooks are written here with openpyxl (xlsx) and odfpy (ods); the two under
``workbooks/`` were saved by LibreOffice 7 (``soffice --convert-to``) from a CSV
with a preamble line.
"""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest
from msoffcrypto.format.ooxml import OOXMLFile
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from core.errors import FileRejected
from core.intake.reading import ReadLimits, WorkbookSource, open_source
from core.intake.reading.workbook import cell_text

HERE = Path(__file__).parent / "workbooks"
HEADER = ["Email", "First name", "Employee number", "Code", "Start date", "Updated", "Active", "Total"]


def xlsx(*sheets: tuple[str, list[list[object]]], epoch_1904: bool = False) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    if epoch_1904:
        book.epoch = CALENDAR_MAC_1904
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read(data: bytes, **kwargs: object) -> tuple[WorkbookSource, list[tuple[int, list[str]]]]:
    with open_source(io.BytesIO(data), **kwargs) as source:  # type: ignore[arg-type]
        assert isinstance(source, WorkbookSource)
        return source, [(row.line, row.values) for row in source.rows()]


def value_rows(epoch_1904: bool = False) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "People"
    if epoch_1904:
        book.epoch = CALENDAR_MAC_1904
    sheet.append(HEADER)
    sheet.append(
        [
            "ann@example.com",
            "Ann",
            1234,
            "00123",
            datetime.date(2024, 3, 1),
            datetime.datetime(2024, 3, 1, 9, 30),
            True,
            "=C2*2",
        ]
    )
    sheet["D2"].number_format = "@"  # a cell formatted as text keeps its leading zeros
    sheet.append(["bob@example.com", "Bob", 1234.0, "007", None, None, False, 2.5])
    sheet.merge_cells("B4:D4")
    sheet["A4"] = "cy@example.com"
    sheet["B4"] = "Cy"
    # A formatted sheet reports a far dimension and styled empty cells: none of them is a row.
    sheet.cell(row=1_048_576, column=30).number_format = "0.00"
    sheet.cell(row=2, column=40).number_format = "0.00"
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    # openpyxl writes no cached value for a formula; Excel does. Give C2*2 its cached 2468.
    return _rewrite(data, "xl/worksheets/sheet1.xml", b"<f>C2*2</f><v /></c>", b"<f>C2*2</f><v>2468</v></c>")


def _rewrite(data: bytes, name: str, old: bytes, new: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == name:
                assert old in body, body[:2000]
                body = body.replace(old, new)
            dst.writestr(info.filename, body)
    return out.getvalue()


@pytest.mark.parametrize("epoch_1904", [False, True])
def test_values_as_the_admin_sees_them(epoch_1904: bool) -> None:
    source, rows = read(value_rows(epoch_1904))
    assert (source.format, source.sheet, source.header, source.header_row) == ("xlsx", "People", HEADER, 1)
    assert rows == [
        (2, ["ann@example.com", "Ann", "1234", "00123", "2024-03-01", "2024-03-01T09:30:00", "TRUE", "2468"]),
        (3, ["bob@example.com", "Bob", "1234", "007", "", "", "FALSE", "2.5"]),
        (4, ["cy@example.com", "Cy", "", "", "", "", "", ""]),
    ]


def test_cell_text() -> None:
    assert cell_text(0.1 + 0.2) == "0.3"  # Excel's 15 significant digits
    assert cell_text(-3.0) == "-3"
    assert cell_text(datetime.datetime(2024, 1, 1, 8, 59, 59, 999_999)) == "2024-01-01T09:00:00"
    assert cell_text(datetime.time(7, 5)) == "07:05:00"
    assert cell_text(datetime.timedelta(hours=26, minutes=3)) == "26:03:00"


def test_the_first_sheet_with_a_matching_header_and_the_sheet_option() -> None:
    data = xlsx(
        ("Notes", [["Read me first"], ["nothing to import here"]]),
        ("Empty", []),
        (
            "Staff",
            [["Preamble: export of 2024-05-01"], ["Email", "First name"], [None], ["a@example.com", "A"]],
        ),
        ("Leavers", [["Email", "First name"], ["b@example.com", "B"]]),
    )
    source, rows = read(data)
    assert (source.sheet, source.other_sheets) == ("Staff", ["Notes", "Empty", "Leavers"])
    assert (source.header_row, source.preamble, rows) == (
        2,
        ["Preamble: export of 2024-05-01"],
        [(4, ["a@example.com", "A"])],
    )
    assert source.blank_rows == 1
    source, rows = read(data, sheet="leavers")
    assert (source.sheet, rows) == ("Leavers", [(2, ["b@example.com", "B"])])
    with pytest.raises(
        FileRejected, match="no sheet named 'Missing': its sheets are Notes, Empty, Staff, Leavers"
    ):
        read(data, sheet="Missing")


def test_a_csv_named_with_a_sheet_is_refused() -> None:
    with pytest.raises(FileRejected, match="has no sheets"):
        open_source(io.BytesIO(b"Email\na@example.com\n"), sheet="People")


@pytest.mark.parametrize("name", ["libreoffice.xlsx", "libreoffice.ods"])
def test_files_saved_by_libreoffice(name: str) -> None:
    with open_source(HERE / name) as source:
        rows = [(row.line, row.values) for row in source.rows()]
        assert (source.format, source.header_row, source.preamble) == (
            name.rpartition(".")[2],
            2,
            ["People export"],
        )
    assert rows[0] == (3, ["Mia", "Manager", "mia@example.com", "Head of Sales", "Sales", "Manager", "en"])
    assert len(rows) == 2


def test_ods_written_by_odfpy() -> None:
    doc = OpenDocumentSpreadsheet()
    table = Table(name="People")
    for values in (["Email", "Employee number", "Active"], ["a@example.com", 1234, True]):
        row = TableRow()
        for value in values:
            if isinstance(value, bool):
                cell = TableCell(valuetype="boolean", booleanvalue="true" if value else "false")
            elif isinstance(value, int):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            row.addElement(cell)
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.save(out)
    source, rows = read(out.getvalue())
    assert (source.format, rows) == ("ods", [(2, ["a@example.com", "1234", "TRUE"])])


def test_a_workbook_from_a_pipe_and_renamed_csv(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(value_rows())
    with open_source(path) as source:
        assert source.format == "xlsx"
    piped = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
            str(path),
        ],
        capture_output=True,
        check=True,
    ).stdout
    reader = io.BufferedReader(_Pipe(piped))
    with open_source(reader) as source:
        assert len(list(source.rows())) == 3


class _Pipe(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- hostile workbooks ----------------------------------------------------------


def rejected(data: bytes, limits: ReadLimits | None = None) -> str:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(FileRejected) as caught:
            open_source(io.BytesIO(data), limits=limits or ReadLimits())
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < 64 * 1024**2, peak
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_zip_bomb_by_declared_size() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            for _ in range(1200):
                part.write(b"\0" * 1024**2)
    assert len(out.getvalue()) < 2 * 1024**2
    assert "unpacks to more than 1,024 MB" in rejected(out.getvalue())


def test_zip_bomb_lying_about_its_size() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<worksheet>" + b" " * 50 * 1024**2 + b"</worksheet>")
    data = bytearray(out.getvalue())
    # Declare 1 KB in the central directory: the reader must not trust it.
    directory = data.rfind(b"PK\x01\x02")
    data[directory + 24 : directory + 28] = (1024).to_bytes(4, "little")
    assert "does not unpack to the size it declares" in rejected(bytes(data))


def test_too_many_entries() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        for index in range(50):
            archive.writestr(f"xl/media/{index}.bin", b"")
    assert "51 ZIP entries" in rejected(out.getvalue(), ReadLimits(max_archive_entries=20))


def test_xml_entity_bomb() -> None:
    lol = '<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">' for i in range(10)
    )
    data = _rewrite(value_rows(), "xl/workbook.xml", b"<workbook", lol.encode() + b"]><workbook")
    assert "declares XML entities (a DOCTYPE)" in rejected(data)


def test_16384_columns() -> None:
    assert "values in column 201, beyond the 200 columns allowed" in rejected(
        xlsx(("People", [["Email", *["x"] * 16383]]))
    )


def test_a_value_far_out_makes_no_huge_sheet() -> None:
    data = xlsx(("People", [["Email"], ["a@example.com"]]))
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    data = _rewrite(data, "xl/worksheets/sheet1.xml", b"</sheetData>", far)
    assert "beyond the 200 columns allowed" in rejected(data)


def test_ten_million_rows() -> None:
    data = xlsx(("People", [["Email"], ["a@example.com"]]))
    far = b'<row r="10000000"><c r="A10000000" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    data = _rewrite(data, "xl/worksheets/sheet1.xml", b"</sheetData>", far)
    assert "reaches row 10,000,000, beyond the 1,048,576 rows allowed" in rejected(data)


def test_too_many_cells_in_an_ods_repetition() -> None:
    doc = OpenDocumentSpreadsheet()
    table = Table(name="People")
    row = TableRow(numberrowsrepeated=1_000_000)
    cell = TableCell(valuetype="string", numbercolumnsrepeated=100)
    cell.addElement(P(text="x"))
    row.addElement(cell)
    table.addElement(row)
    doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.save(out)
    assert "more than the 30,000,000 cells allowed" in rejected(out.getvalue())


def test_password_protected() -> None:
    plain = io.BytesIO(value_rows())
    encrypted = io.BytesIO()
    office = OOXMLFile(plain)
    office.encrypt("secret", encrypted)
    assert "protected by a password" in rejected(encrypted.getvalue())


def test_macro_enabled_workbook_is_read_for_its_values() -> None:
    data = value_rows()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr(
            "xl/vbaProject.bin", b'Attribute VB_Name = "Module1"\nSub Auto_Open()\nShell "calc"\nEnd Sub'
        )
    source, rows = read(out.getvalue())
    assert source.format == "xlsm" and len(rows) == 3
