"""Tests for core.intake.reading: encodings, dialects, row numbering, limits and rejections."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import FileRejected
from core.intake.reading import SNIFF_BYTES, CsvSource, ReadLimits, SourceRow, open_csv

SPECTRUM = Path(__file__).parents[3] / "shared" / "csv-spectrum"
SPECTRUM_CASES = sorted(p.stem for p in SPECTRUM.glob("*.csv")) if SPECTRUM.is_dir() else []
# Cases whose .json does not describe its .csv; the reader cannot and should not match them.
SPECTRUM_FIXTURE_DEFECTS = {
    "newlines_crlf": "the .csv has LF line endings (its CRs were lost) but the .json expects '\\r\\n' "
    "inside the quoted cell; test_spectrum_crlf_restored checks the case with CRLF put back",
    "location_coordinates": "the .json is one object, not a list, and its phone number (1234567890) "
    "differs from the one in the .csv (2095257564)",
}
HYPOTHESIS = settings(max_examples=200, deadline=None, database=None)


def read(data: bytes, limits: ReadLimits | None = None) -> tuple[CsvSource, list[SourceRow]]:
    """Open bytes as a CSV stream and read every row."""
    with open_csv(io.BytesIO(data), limits=limits or ReadLimits()) as source:
        return source, list(source.rows())


def records(source: CsvSource, rows: list[SourceRow]) -> list[dict[str, str]]:
    """Rows as header-keyed records, like the csv-spectrum .json files."""
    return [dict(zip(source.header, row.values, strict=False)) for row in rows]


def rejection(data: bytes, limits: ReadLimits | None = None) -> str:
    """The FileRejected message for data, which must be rejected at open or while reading."""
    with pytest.raises(FileRejected) as caught:
        read(data, limits)
    return str(caught.value)


# --- csv-spectrum -------------------------------------------------------------------------------


def spectrum_params() -> list[Any]:
    """One param per csv-spectrum case, known fixture defects marked as strict xfails."""
    return [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(strict=True, reason=SPECTRUM_FIXTURE_DEFECTS[name])]
            if name in SPECTRUM_FIXTURE_DEFECTS
            else [],
        )
        for name in SPECTRUM_CASES
    ]


@pytest.mark.skipif(not SPECTRUM_CASES, reason=f"csv-spectrum fixtures not found at {SPECTRUM}")
@pytest.mark.parametrize("name", spectrum_params())
def test_spectrum(name: str) -> None:
    source, rows = read((SPECTRUM / f"{name}.csv").read_bytes())
    expected = json.loads((SPECTRUM / f"{name}.json").read_text(encoding="utf-8"))
    assert records(source, rows) == expected


@pytest.mark.skipif(not SPECTRUM_CASES, reason=f"csv-spectrum fixtures not found at {SPECTRUM}")
@pytest.mark.parametrize("name", [n for n in SPECTRUM_CASES if n.endswith("_crlf")])
def test_spectrum_crlf_restored(name: str) -> None:
    # Upstream, the *_crlf files use CRLF throughout, quoted line breaks included.
    data = (SPECTRUM / f"{name}.csv").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    expected = json.loads((SPECTRUM / f"{name}.json").read_text(encoding="utf-8"))
    source, rows = read(data)
    assert records(source, rows) == expected


# --- encodings ----------------------------------------------------------------------------------

PEOPLE = [["Prénom", "Nom", "Email"], ["Zoë", "Lefèvre", "zoe@example.com"], ["Ann", "Price €", "ann@x.io"]]


def excel_text(rows: list[list[str]], delimiter: str = ",", lineterminator: str = "\r\n") -> str:
    """Rows written the way Excel writes them (csv's excel dialect)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("encode", "delimiter", "expected_encoding"),
    [
        (lambda text: text.encode("utf-8"), ",", "utf-8"),
        (lambda text: codecs.BOM_UTF8 + text.encode("utf-8"), ",", "utf-8-sig"),
        (lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "\t", "utf-16"),
        (lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"), "\t", "utf-16"),
        (lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"), ",", "utf-16"),
        (lambda text: text.encode("cp1252"), ";", "cp1252"),
    ],
    ids=["utf-8", "utf-8-sig", "utf-16le-excel-unicode-text", "utf-16be", "utf-16le-comma", "cp1252"],
)
def test_encodings(encode: Any, delimiter: str, expected_encoding: str) -> None:
    source, rows = read(encode(excel_text(PEOPLE, delimiter)))
    assert (source.encoding, source.delimiter) == (expected_encoding, delimiter)
    assert source.header == PEOPLE[0]  # the BOM is not part of the first header cell
    assert [row.values for row in rows] == PEOPLE[1:]
    assert [row.line for row in rows] == [2, 3]


def test_character_cut_by_the_end_of_the_sniffed_prefix_is_still_utf8() -> None:
    head = b"First name,Email\n"
    filler = b"Ann,ann@x.io\n" * ((SNIFF_BYTES - len(head)) // 13)
    padding = b"x" * (SNIFF_BYTES - 1 - len(head) - len(filler))
    data = head + filler + padding + "é,z@x.io\n".encode()
    assert data[SNIFF_BYTES - 1 : SNIFF_BYTES + 1] == "é".encode()
    source, rows = read(data)
    assert source.encoding == "utf-8"
    assert rows[-1].values == [padding.decode() + "é", "z@x.io"]


def test_invalid_utf8_after_the_sniffed_prefix_names_the_row() -> None:
    good_rows = SNIFF_BYTES // 10  # well past the prefix
    data = b"First name,Email\n" + b"Ann,a@x.io\n" * good_rows + b"Bob,b\xe9@x.io\nCy,c@x.io\n"
    bad_row = good_rows + 2
    with open_csv(io.BytesIO(data)) as source:
        assert source.encoding == "utf-8"
        seen = []
        with pytest.raises(FileRejected, match=rf"^row {bad_row}, column 2 is not valid UTF-8 text"):
            for row in source.rows():
                seen.append(row.line)
    assert seen[-1] == bad_row - 1


def test_windows_1252_only_when_the_prefix_is_not_utf8() -> None:
    source, rows = read("Prénom,Email\nÉlodie,e@x.io\n".encode("cp1252"))
    assert source.encoding == "cp1252"
    assert source.header == ["Prénom", "Email"]
    assert rows[0].values == ["Élodie", "e@x.io"]


def test_bytes_that_are_neither_utf8_nor_windows_1252() -> None:
    assert "neither UTF-8 nor Windows-1252" in rejection(b"a,b\n\x81\x8d,\x90\n")


def test_utf16_truncated_after_the_prefix_is_rejected() -> None:
    data = codecs.BOM_UTF16_LE + ("a\tb\n" + "1\t2\n" * SNIFF_BYTES).encode("utf-16-le") + b"\x00"
    assert "stops being valid UTF-16 text" in rejection(data)


# --- dialect and layout -------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("lineterminator", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_delimiters_and_line_endings(delimiter: str, lineterminator: str) -> None:
    rows = [
        ["First name", "Last name", "Email", "Team"],
        ["Ann", f"Lee{delimiter}Jr", "ann@x.io", 'the "A" team'],
        ["Bob", "Ray", "bob@x.io", "Sales, EMEA; Ops | Support"],
    ]
    source, read_rows = read(excel_text(rows, delimiter, lineterminator).encode())
    assert source.delimiter == delimiter
    assert source.header == rows[0]
    assert [row.values for row in read_rows] == rows[1:]


def test_semicolon_file_with_commas_in_its_cells() -> None:
    source, rows = read(b"Name;Job title;Email\nLee;Sales, EMEA;l@x.io\nRay;Ops, APAC;r@x.io\n")
    assert source.delimiter == ";"
    assert rows[1].values == ["Ray", "Ops, APAC", "r@x.io"]


def test_semicolons_in_every_row_of_a_slightly_ragged_comma_file() -> None:
    # Split on ";", the header is one cell and each row two, which reads as a title line
    # above a perfectly consistent two-column file; a reading without a preamble wins.
    rows = [f"P{i},Lee,p{i}@x.io,Sales;Ops" for i in range(5)] + ["Bob,Ray,b@x.io,Sales;Ops,extra"]
    source, read_rows = read("\n".join(["First name,Last name,Email,Secondary team", *rows]).encode())
    assert (source.delimiter, source.preamble) == (",", [])
    assert read_rows[0].values == ["P0", "Lee", "p0@x.io", "Sales;Ops"]


def test_single_column_file_defaults_to_comma() -> None:
    source, rows = read(b"Email\na@x.io\nb@x.io\n")
    assert (source.delimiter, source.header) == (",", ["Email"])
    assert [row.values for row in rows] == [["a@x.io"], ["b@x.io"]]


def test_quoted_line_breaks_do_not_shift_row_numbers() -> None:
    data = b'Name,Note\r\nAnn,"line one\r\nline two\r\nline three"\r\nBob,short\r\n'
    _, rows = read(data)
    assert [(row.line, row.values[0]) for row in rows] == [(2, "Ann"), (3, "Bob")]
    assert rows[0].values[1] == "line one\r\nline two\r\nline three"


def test_blank_rows_are_skipped_counted_and_still_numbered() -> None:
    source, rows = read(b"a,b\n1,2\n\n,\n  ,\t\n3,4\n\n")
    assert [(row.line, row.values) for row in rows] == [(2, ["1", "2"]), (6, ["3", "4"])]
    assert source.blank_rows == 4


def test_short_rows_are_padded_and_long_rows_kept() -> None:
    _, rows = read(b"a,b,c\n1\n1,2,3,4\n")
    assert [row.values for row in rows] == [["1", "", ""], ["1", "2", "3", "4"]]


def test_cells_are_not_trimmed() -> None:
    _, rows = read(b"a,b\n  Ann , b@x.io \n")
    assert rows[0].values == ["  Ann ", " b@x.io "]


@pytest.mark.parametrize(
    ("data", "preamble", "header_row"),
    [
        (b"Exported on 2024-05-01\nFirst name,Last name,Email\n", ["Exported on 2024-05-01"], 2),
        (b"People export,,\r\nFirst name,Last name,Email\r\n", ["People export"], 2),
        (b"Acme Inc.\nPeople\n\nFirst name,Last name,Email\n", ["Acme Inc.", "People"], 4),
        (b"Report,2024-05-01\nFirst name,Last name,Email,Role,Team,Language\n", ["Report,2024-05-01"], 2),
        (b"\n\nFirst name,Last name,Email\n", [], 3),
        (b"First name,Last name,Email\n", [], 1),
    ],
    ids=["title", "excel-padded-title", "two-titles-and-blank", "far-fewer-cells", "leading-blanks", "none"],
)
def test_preamble(data: bytes, preamble: list[str], header_row: int) -> None:
    width = data.splitlines()[-1].count(b",") + 1
    source, rows = read(data + b",".join([b"x"] * width) + b"\n")
    assert source.preamble == preamble
    assert source.header_row == header_row
    assert source.header[0] == "First name"
    assert [row.line for row in rows] == [header_row + 1]


def test_header_only_file() -> None:
    for data in (b"First name,Last name,Email\n", b"First name,Last name,Email"):
        source, rows = read(data)
        assert source.header == ["First name", "Last name", "Email"]
        assert rows == []
        assert source.blank_rows == 0


# --- rejections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"  \r\n\n\t", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b"\xef\xbb\xbf\n"]
)
def test_empty_file(data: bytes) -> None:
    assert rejection(data) == "the file is empty"


def test_header_with_only_empty_cells() -> None:
    assert rejection(b",,\n , ,\n").startswith("no header row found")


def test_nul_bytes_in_the_prefix() -> None:
    assert "contains NUL bytes; is it a binary file?" in rejection(b"a,b\n1,\x002\n")


def test_nul_bytes_after_the_prefix_name_the_row() -> None:
    data = b"a,b\n" + b"1,2\n" * (SNIFF_BYTES // 4) + b"3,\x00\n"
    message = rejection(data)
    assert message.startswith(f"row {SNIFF_BYTES // 4 + 2} contains NUL bytes")


def xlsx_bytes() -> bytes:
    """A minimal ZIP laid out like an Excel workbook."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def zip_bytes() -> bytes:
    """A ZIP archive holding a CSV."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("people.csv", "a,b\n1,2\n")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (xlsx_bytes(), "looks like an Excel workbook (.xlsx), not a CSV: in Excel choose File › Save As"),
        (zip_bytes(), "the file is a ZIP archive, not a CSV"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "legacy Excel workbook (.xls)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
        (gzip.compress(b"a,b\n1,2\n"), "gzip-compressed"),
    ],
    ids=["xlsx", "zip", "xls", "pdf", "gzip"],
)
def test_other_file_formats(data: bytes, expected: str) -> None:
    assert expected in rejection(data)


def test_enormous_line() -> None:
    data = b"a,b\n1,2\n3," + b"x" * 1_000_001 + b"\n"
    assert rejection(data).startswith("row 3 is longer than 1,000,000 characters")


def test_line_at_the_limit_is_read_whatever_its_line_break() -> None:
    limits = ReadLimits(max_line_chars=20, max_field_chars=20)
    for newline in (b"\r\n", b"\n", b"\r"):
        _, rows = read(b"a,b" + newline + b"1," + b"x" * 18 + newline + b"2,y" + newline, limits)
        assert [row.line for row in rows] == [2, 3]
    assert rejection(b"a,b\n1," + b"x" * 19 + b"\r\n", limits).startswith("row 2 is longer than 20")


def test_enormous_line_is_never_held_in_memory() -> None:
    def produce() -> Iterator[bytes]:
        yield b"a,b\n1,"
        for _ in range(128):  # 8 MB without a line break
            yield b"x" * SNIFF_BYTES

    tracemalloc.start()
    try:
        with open_csv(
            unseekable(produce(), chunk=SNIFF_BYTES), limits=ReadLimits(max_line_chars=10_000)
        ) as source:
            rows = source.rows()
            with pytest.raises(FileRejected, match=r"^row 2 is longer than 10,000 characters"):
                list(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"peak {peak:,} bytes: the line is being held in memory"


def test_quote_never_closed_is_rejected_without_reading_the_rest() -> None:
    data = b'a,b\n1,"never closed\n' + b"2,x\n" * 300_000
    assert rejection(data).startswith("row 2 is longer than 1,000,000 characters")


def test_too_many_columns() -> None:
    header = ",".join(f"c{i}" for i in range(201)).encode()
    message = rejection(header + b"\n")
    assert message.startswith("the header on row 1 has 201 columns, more than the 200 allowed")
    source, _ = read(",".join(f"c{i}" for i in range(200)).encode() + b"\n")
    assert len(source.header) == 200


def test_field_longer_than_the_limit_names_row_and_column() -> None:
    assert len(read(b"a,b\n1,2\n3," + b"x" * 10_000 + b"\n")[1]) == 2
    assert rejection(b"a,b\n1,2\n3," + b"x" * 10_001 + b"\n") == (
        "row 3, column 2 holds more than 10,000 characters: "
        "shorten it, or check for a quote that is never closed"
    )


def test_field_longer_than_csv_modules_own_limit_is_still_ours_to_report() -> None:
    assert rejection(b'a,b\n"' + b"x" * 200_000 + b'",2\n').startswith("row 2, column 1 holds more than")


def test_file_too_big(tmp_path: Path) -> None:
    limits = ReadLimits(max_file_bytes=1024)
    data = b"a,b\n" + b"1,2\n" * 300
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    for target in (path, str(path)):
        with pytest.raises(FileRejected, match="the file is larger than 1 KB: split it into smaller files"):
            open_csv(target, limits=limits)
    assert rejection(data, limits) == "the file is larger than 1 KB: split it into smaller files"
    # A pipe's size is unknown up front, so its bytes are counted as they are read.
    pipe = unseekable(b"a,b\n" + b"1,2\n" * 50_000)
    with open_csv(pipe, limits=ReadLimits(max_file_bytes=100 * 1024)) as source:
        rows = source.rows()
        with pytest.raises(FileRejected, match="the file is larger than 100 KB"):
            list(rows)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match=r"cannot read .*missing\.csv: No such file"):
        open_csv(tmp_path / "missing.csv")


# --- sources and lifecycle ----------------------------------------------------------------------


class Unseekable(io.RawIOBase):
    """A pipe-like stream: no seek, no size, short reads."""

    def __init__(self, data: bytes | Iterator[bytes], chunk: int = 1000) -> None:
        super().__init__()
        self._chunks = iter([data]) if isinstance(data, bytes) else data
        self._pending = b""
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return b""
        size = self._chunk if size < 0 else min(size, self._chunk)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def unseekable(data: bytes | Iterator[bytes], chunk: int = 1000) -> BinaryIO:
    """A pipe-like binary stream (typed as the BinaryIO that open_csv accepts)."""
    return cast(BinaryIO, Unseekable(data, chunk))


def test_path_source_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(excel_text(PEOPLE).encode())
    with open_csv(path) as source:
        assert [row.values for row in source.rows()] == PEOPLE[1:]
    assert source._text.closed


def test_caller_stream_is_read_from_its_position_and_left_open() -> None:
    stream = io.BytesIO(b"ignored line\n" + excel_text(PEOPLE).encode())
    stream.readline()
    with open_csv(stream) as source:
        assert source.header == PEOPLE[0]
        assert [row.values for row in source.rows()] == PEOPLE[1:]
    assert not stream.closed


def test_unseekable_stream_with_short_reads() -> None:
    data = excel_text([["a", "b"]] + [[str(i), "é" * (i % 7)] for i in range(50_000)]).encode()
    with open_csv(unseekable(data, chunk=777)) as source:
        rows = list(source.rows())
    assert len(rows) == 50_000
    assert rows[-1] == SourceRow(50_001, ["49999", "é" * (49_999 % 7)])


def test_rows_may_be_iterated_only_once() -> None:
    with open_csv(io.BytesIO(b"a,b\n1,2\n")) as source:
        list(source.rows())
        with pytest.raises(RuntimeError):
            source.rows()


def test_memory_stays_flat_on_a_large_stream() -> None:
    row = b"Ann,Lee,ann.lee@example.com,Engineer,Platform,Learner,en,Paris\n"
    blocks = 64  # about 4 MB in all, read in blocks of 64 KB
    block = row * 1000

    def produce() -> Iterator[bytes]:
        yield b"First name,Last name,Email,Job title,Primary team,Role,Language,Location\n"
        for _ in range(blocks):
            yield block

    tracemalloc.start()
    try:
        with open_csv(unseekable(produce(), chunk=SNIFF_BYTES)) as source:
            count = sum(1 for _ in source.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == blocks * 1000
    assert peak < 1024 * 1024, f"peak {peak:,} bytes: the file is being held in memory"


# --- properties ---------------------------------------------------------------------------------

CSVISH = st.lists(
    st.sampled_from(
        [
            b",",
            b";",
            b"\t",
            b"|",
            b'"',
            b"\n",
            b"\r",
            b"\r\n",
            b"a",
            b" ",
            b"\xc3\xa9",
            b"\xe9",
            b"\xff",
            b"\0",
        ]
    ),
    max_size=200,
).map(b"".join)
PREFIXES = st.sampled_from([b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"PK\x03\x04"])
PREFIXED = st.tuples(PREFIXES, st.one_of(CSVISH, st.binary())).map(b"".join)
ANY_BYTES = st.one_of(st.binary(max_size=2000), PREFIXED)
SMALL_LIMITS = st.one_of(
    st.just(ReadLimits()),
    st.builds(
        ReadLimits,
        max_file_bytes=st.integers(1, 3000),
        max_field_chars=st.integers(1, 50),
        max_columns=st.integers(1, 10),
        max_line_chars=st.integers(1, 100),
    ),
)


@HYPOTHESIS
@given(data=ANY_BYTES, limits=SMALL_LIMITS)
def test_any_bytes_are_read_or_rejected(data: bytes, limits: ReadLimits) -> None:
    try:
        with open_csv(io.BytesIO(data), limits=limits) as source:
            assert source.header_row >= 1
            assert len(source.header) <= limits.max_columns
            previous = source.header_row
            for row in source.rows():
                assert row.line > previous
                assert len(row.values) >= len(source.header)
                assert any(cell.strip() for cell in row.values)
                "".join(row.values).encode("utf-8")  # storable as text: no lone surrogates
                previous = row.line
    except FileRejected as error:
        assert str(error) and "\n" not in str(error)


ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-sig": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-le": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "cp1252": lambda text: text.encode("cp1252"),
}


@st.composite
def written_files(draw: st.DrawFn) -> tuple[bytes, str, list[list[str]]]:
    """A file written by csv.writer in a random delimiter, line break and encoding."""
    encoding = draw(st.sampled_from(sorted(ENCODINGS)))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    lineterminator = draw(st.sampled_from(["\r\n", "\n"]))
    codec = "cp1252" if encoding == "cp1252" else "utf-8"
    # csv.writer quotes only the line break characters of its own lineterminator.
    excluded = "\x00\r" if lineterminator == "\n" else "\x00"
    character = st.characters(codec=codec, exclude_characters=excluded, exclude_categories=["Cs"])
    cell = st.text(character, max_size=12)
    label = st.text(st.characters(categories=["L", "N"], codec=codec), min_size=1, max_size=10)
    columns = draw(st.integers(2, 6))
    header = draw(st.lists(label, min_size=columns, max_size=columns))
    if encoding == "cp1252":
        header[0] = "Prénom"  # real Windows-1252 files hold non-UTF-8 bytes early on
    body = draw(st.lists(st.lists(cell, min_size=columns, max_size=columns), max_size=20))
    text = excel_text([header, *body], delimiter, lineterminator)
    return ENCODINGS[encoding](text), delimiter, [header, *body]


@HYPOTHESIS
@given(written=written_files())
def test_written_rows_round_trip(written: tuple[bytes, str, list[list[str]]]) -> None:
    data, delimiter, (header, *body) = written
    source, rows = read(data)
    assert source.delimiter == delimiter
    assert source.header == header
    expected = [(line, values) for line, values in enumerate(body, start=2) if any(v.strip() for v in values)]
    assert [(row.line, row.values) for row in rows] == expected
    assert source.blank_rows == len(body) - len(expected)
