"""Stream a CSV file into rows, whichever spreadsheet program wrote it.

The review and the import both read the upload through :func:`open_csv`. It looks
at a bounded prefix (:data:`SNIFF_BYTES`) to choose the text encoding, the
delimiter and the header row, then streams the whole file through an incremental
decoder into :mod:`csv`, so memory stays flat however large the file is.

Row numbers are the ones a spreadsheet shows: the header is on ``header_row`` and
the n-th record after it on ``header_row + n``. A line break inside a quoted cell
does not start a new row; blank rows are skipped but still counted.

Anything that makes the whole file unreadable raises
:class:`~worker.errors.FileRejected` with one sentence the admin can act on.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Self

from worker.errors import FileRejected

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DEFAULT_LIMITS", "SNIFF_BYTES", "CsvSource", "ReadLimits", "SourceRow", "open_csv"]

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
MAX_PREAMBLE_LINES = 5
# Records of the prefix weighed when choosing a delimiter, and the share of them
# that must have the header's cell count for a delimiter to count as consistent.
_SAMPLE_RECORDS = 30
_CONSISTENT_SHARE = 0.8

_SAVE_AS_CSV = "in Excel choose File › Save As › CSV UTF-8"
_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}
_OTHER_FORMATS = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        f"the file looks like a legacy Excel workbook (.xls), not a CSV: {_SAVE_AS_CSV}",
    ),
    (
        b"%PDF-",
        "the file is a PDF document, not a CSV: export the list as CSV UTF-8 from the system it came from",
    ),
    (b"\x1f\x8b", "the file is gzip-compressed: decompress it and upload the CSV inside"),
)


@dataclass(frozen=True)
class ReadLimits:
    """Bounds that keep one mistaken or hostile file from exhausting the producer."""

    max_file_bytes: int = 2 * 1024**3
    max_field_chars: int = 10_000
    max_columns: int = 200
    max_line_chars: int = 1_000_000  # one record, quoted line breaks included


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True)
class SourceRow:
    """One non-blank data row, numbered as a spreadsheet shows it."""

    line: int
    values: list[str]


class CsvSource:
    """A CSV file opened for streaming: its format and header, then its rows.

    Build one with :func:`open_csv`; the header has been read by then. ``blank_rows``
    grows while :meth:`rows` is iterated and is final once it is exhausted.
    """

    encoding: str
    delimiter: str
    header: list[str]
    header_row: int
    preamble: list[str]
    blank_rows: int

    def __init__(
        self,
        text: io.TextIOWrapper,
        *,
        encoding: str,
        delimiter: str,
        preamble_lines: int,
        limits: ReadLimits,
    ) -> None:
        """Wrap a decoded stream positioned at the start of the file and read up to the header."""
        self.encoding = encoding
        self.delimiter = delimiter
        self.preamble = []
        self.blank_rows = 0
        self._text = text
        self._limits = limits
        self._label = _LABELS.get(encoding, encoding)
        self._row = 1  # spreadsheet row of the record being read
        self._record_chars = 0
        self._iterated = False
        self._records = self._read_records(csv.reader(self._lines(), delimiter=delimiter))
        self.header = self._read_header(preamble_lines)
        self.header_row = self._row

    def rows(self) -> Iterator[SourceRow]:
        """Stream the non-blank data rows, short ones padded with ``""`` to the header's width.

        The file is read as the rows are consumed, so this may be called only once.
        """
        if self._iterated:
            raise RuntimeError("CsvSource.rows() may only be iterated once")
        self._iterated = True
        return self._iter_rows()

    def close(self) -> None:
        """Release the file; a stream passed in by the caller is left open."""
        self._text.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _iter_rows(self) -> Iterator[SourceRow]:
        width = len(self.header)
        for record in self._records:
            if _is_blank(record):
                self.blank_rows += 1
                continue
            if len(record) < width:
                record.extend([""] * (width - len(record)))
            yield SourceRow(self._row, record)

    def _read_header(self, preamble_lines: int) -> list[str]:
        for record in self._records:
            if _is_blank(record):
                continue
            if len(self.preamble) < preamble_lines:
                self.preamble.append(self.delimiter.join(record[: _width(record)]))
                continue
            if len(record) > self._limits.max_columns:
                raise FileRejected(
                    f"the header on row {self._row} has {len(record)} columns, more than the "
                    f"{self._limits.max_columns} allowed: delete the unused columns"
                )
            if record[0].startswith("\ufeff"):  # a second BOM, left by saving a file twice
                record[0] = record[0][1:]
            return record
        raise FileRejected(
            "no header row found: the first row must hold the column names (First name, Last name, Email, …)"
        )

    def _read_records(self, reader: Iterator[list[str]]) -> Iterator[list[str]]:
        """Yield checked records; while one is yielded, ``self._row`` is its row number."""
        try:
            for record in reader:
                self._check_cells(record)
                yield record
                self._row += 1
                self._record_chars = 0
        except csv.Error as error:
            raise FileRejected(f"row {self._row} is not valid CSV ({error}): check its quotes") from error

    def _lines(self) -> Iterator[str]:
        # Lines are read with a size cap so one enormous line, or a quote that is
        # never closed, is rejected before it is held in memory.
        limit = self._limits.max_line_chars
        while True:
            try:
                line = self._text.readline(limit + 2)
            except UnicodeDecodeError as error:
                raise FileRejected(
                    f"the file stops being valid {self._label} text at or soon after row {self._row}: "
                    f"save it again as CSV UTF-8 ({_SAVE_AS_CSV})"
                ) from error
            if not line:
                return
            self._record_chars += len(line)
            if self._record_chars > limit and self._record_chars - _line_break_length(line) > limit:
                raise FileRejected(
                    f"row {self._row} is longer than {limit:,} characters: "
                    "check it for a quote that is never closed, or split it"
                )
            yield line

    def _check_cells(self, record: list[str]) -> None:
        joined = "".join(record)
        limit = self._limits.max_field_chars
        if len(joined) > limit and max(map(len, record)) > limit:
            column = next(i for i, cell in enumerate(record, 1) if len(cell) > limit)
            raise FileRejected(
                f"row {self._row}, column {column} holds more than {limit:,} characters: "
                "shorten it, or check for a quote that is never closed"
            )
        if "\x00" in joined:
            raise FileRejected(
                f"row {self._row} contains NUL bytes; is it a binary file? Save it as CSV UTF-8"
            )
        # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"),
        # which lets us name the exact row and column instead of a chunk offset.
        if not joined.isascii() and not _is_encodable(joined):
            column = next(i for i, cell in enumerate(record, 1) if not _is_encodable(cell))
            raise FileRejected(
                f"row {self._row}, column {column} is not valid {self._label} text: "
                f"save the file as CSV UTF-8 ({_SAVE_AS_CSV})"
            )


def open_csv(source: str | os.PathLike[str] | BinaryIO, *, limits: ReadLimits = DEFAULT_LIMITS) -> CsvSource:
    """Open a CSV file (a path or a binary stream) and read up to its header.

    Raises :class:`FileRejected` when the file cannot be read at all. A stream is
    read from its current position and is not closed by :meth:`CsvSource.close`.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            stream: BinaryIO = open(source, "rb")  # noqa: SIM115 - owned by the CsvSource
        except OSError as error:
            raise FileRejected(f"cannot read {os.fspath(source)}: {error.strerror or error}") from error
        owns = True
    else:
        stream, owns = source, False
    try:
        return _open_stream(stream, owns=owns, limits=limits)
    except BaseException:
        if owns:
            stream.close()
        raise


def _open_stream(stream: BinaryIO, *, owns: bool, limits: ReadLimits) -> CsvSource:
    size = _remaining_size(stream)
    prefix, complete = _read_prefix(stream)
    if (size if size is not None else len(prefix)) > limits.max_file_bytes:
        raise FileRejected(_too_big(limits.max_file_bytes))
    encoding = _detect_encoding(prefix, complete=complete)
    sample = codecs.getincrementaldecoder(encoding)(errors="replace").decode(prefix, final=complete)
    if complete and not sample.strip():
        raise FileRejected("the file is empty")
    delimiter, preamble_lines = _choose_layout(sample, complete=complete)
    # csv's own limit is process-wide and its error names neither row nor column;
    # records are already bounded by max_line_chars, so it only ever needs raising.
    needed = max(limits.max_line_chars, limits.max_field_chars) + 2
    if csv.field_size_limit() < needed:
        csv.field_size_limit(needed)
    replay = _ReplayStream(prefix, stream, owns=owns, max_bytes=limits.max_file_bytes)
    text = io.TextIOWrapper(
        io.BufferedReader(replay, SNIFF_BYTES), encoding=encoding, errors="surrogateescape", newline=""
    )
    try:
        return CsvSource(
            text, encoding=encoding, delimiter=delimiter, preamble_lines=preamble_lines, limits=limits
        )
    except BaseException:
        text.close()
        raise


class _ReplayStream(io.RawIOBase):
    """The sniffed prefix, then the rest of the source, counted against the size limit.

    Replaying the prefix works for pipes as well as files, so nothing needs to seek.
    """

    def __init__(self, prefix: bytes, rest: BinaryIO, *, owns: bool, max_bytes: int) -> None:
        super().__init__()
        self._prefix = prefix
        self._rest = rest
        self._owns = owns
        self._max_bytes = max_bytes
        self._served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            data, self._prefix = self._prefix[: len(view)], self._prefix[len(view) :]
        else:
            data = self._rest.read(len(view)) or b""
        view[: len(data)] = data
        self._served += len(data)
        if self._served > self._max_bytes:  # the size was unknown up front (a pipe)
            raise FileRejected(_too_big(self._max_bytes))
        return len(data)

    def close(self) -> None:
        if not self.closed and self._owns:
            self._rest.close()
        super().close()


def _remaining_size(stream: BinaryIO) -> int | None:
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError):
        return None
    return end - here


def _read_prefix(stream: BinaryIO) -> tuple[bytes, bool]:
    """Read up to SNIFF_BYTES; also say whether that was the whole file."""
    chunks: list[bytes] = []
    size = 0
    while size < SNIFF_BYTES:
        chunk = stream.read(SNIFF_BYTES - size)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _detect_encoding(prefix: bytes, *, complete: bool) -> str:
    if prefix.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if b"xl/" in prefix:
            raise FileRejected(f"the file looks like an Excel workbook (.xlsx), not a CSV: {_SAVE_AS_CSV}")
        raise FileRejected(
            f"the file is a ZIP archive, not a CSV: extract the CSV, or if it is a workbook, {_SAVE_AS_CSV}"
        )
    for magic, message in _OTHER_FORMATS:
        if prefix.startswith(magic):
            raise FileRejected(message)
    if prefix.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in prefix:
        raise FileRejected("the file contains NUL bytes; is it a binary file? Save it as CSV UTF-8")
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # Incremental, so a character cut in two by the end of the prefix is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(prefix, final=complete)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    try:
        prefix.decode("cp1252")
    except UnicodeDecodeError:
        raise FileRejected(
            "the file's text encoding is neither UTF-8 nor Windows-1252: "
            f"save it as CSV UTF-8 ({_SAVE_AS_CSV})"
        ) from None
    return "cp1252"


def _choose_layout(sample: str, *, complete: bool) -> tuple[str, int]:
    """Choose the delimiter and the number of preamble lines from the prefix.

    Each candidate parses the sample; it must split the header into at least two
    cells, and it is consistent when most following records have the header's cell
    count. Preference: consistent, then no preamble, then more consistent, then
    more columns, then the order of DELIMITERS. Without a winner: ",".
    """
    best: tuple[tuple[bool, bool, int, float, int, int], str, int] | None = None
    for index, delimiter in enumerate(DELIMITERS):
        records = [r for r in _sample_records(sample, delimiter, complete=complete) if not _is_blank(r)]
        if not records:
            continue
        skip = _count_preamble(records)
        columns = len(records[skip])
        following = records[skip + 1 :]
        share = sum(len(r) == columns for r in following) / len(following) if following else 1.0
        key = (columns > 1, share >= _CONSISTENT_SHARE, -skip, share, columns, -index)
        if best is None or key > best[0]:
            best = (key, delimiter, skip)
    if best is None or not best[0][0]:
        return ",", 0
    return best[1], best[2]


def _count_preamble(records: list[list[str]]) -> int:
    """Count the non-blank records before the header.

    Preamble lines are leading lines with at most one non-empty cell, plus at most
    one more line with a third or fewer of the next line's cells ("Report,2024-05-01"
    above a nine-column header) — never more than MAX_PREAMBLE_LINES, and only when
    the header they lead to has at least two cells.
    """
    skip = 0
    while skip < min(MAX_PREAMBLE_LINES, len(records)) and _width(records[skip]) <= 1:
        skip += 1
    if (
        skip < MAX_PREAMBLE_LINES
        and skip + 1 < len(records)
        and _width(records[skip]) * 3 <= _width(records[skip + 1])
    ):
        skip += 1
    if skip >= len(records) or _width(records[skip]) < 2:
        return 0
    return skip


def _sample_records(sample: str, delimiter: str, *, complete: bool) -> list[list[str]]:
    records: list[list[str]] = []
    try:
        for record in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            records.append(record)
            if len(records) > _SAMPLE_RECORDS:
                break
    except csv.Error:
        pass
    if not complete and records:
        records.pop()  # the prefix may end inside it
    return records


def _is_blank(record: list[str]) -> bool:
    return not "".join(record).strip()


def _width(record: list[str]) -> int:
    """Cells up to the last non-empty one: Excel pads short rows with delimiters."""
    for index in range(len(record), 0, -1):
        if record[index - 1].strip():
            return index
    return 0


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _line_break_length(line: str) -> int:
    if line.endswith("\r\n"):
        return 2
    return 1 if line.endswith(("\r", "\n")) else 0


def _too_big(max_bytes: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if max_bytes >= scale:
            return f"the file is larger than {max_bytes / scale:.3g} {unit}: split it into smaller files"
    return f"the file is larger than {max_bytes} bytes: split it into smaller files"
