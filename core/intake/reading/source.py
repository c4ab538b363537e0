"""The CSV file opened for streaming: :func:`open_csv` and :class:`CsvSource`.

The prefix replayed in front of the rest of the file, the size, line and cell
limits (:class:`ReadLimits`), and the rows numbered as a spreadsheet shows them.
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

from core.errors import FileRejected
from core.intake.reading.dialect import choose_layout, is_blank, width
from core.intake.reading.encodings import LABELS, SAVE_AS_CSV, detect_encoding, is_encodable, too_big

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DEFAULT_LIMITS", "SNIFF_BYTES", "CsvSource", "ReadLimits", "SourceRow", "open_csv"]

SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """Bounds that keep one mistaken or hostile file from exhausting the producer."""

    max_file_bytes: int = 2 * 1024**3
    max_field_chars: int = 10_000
    max_columns: int = 200
    max_line_chars: int = 1_000_000  # one record, quoted line breaks included
    # Workbooks only: a ZIP is inflated, and a sheet held whole, before any row is read.
    max_rows: int = 1_048_576  # Excel's own last row
    max_archive_entries: int = 10_000
    max_unpacked_bytes: int = 1024**3  # the declared uncompressed sizes of all entries together
    max_cells: int = 30_000_000  # the used area of a sheet (rows × columns) held in memory


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True)
class SourceRow:
    """One non-blank data row, numbered as a spreadsheet shows it."""

    line: int
    values: list[str]


class RowSource:
    """A file opened for the review or the import: its header, then its rows, once.

    The shared half of :class:`CsvSource` and the workbook's source: they read
    their rows as they are consumed, so ``rows`` may be iterated only once, and
    leaving a ``with`` block closes them.
    """

    _iterated = False

    def rows(self) -> Iterator[SourceRow]:
        """Stream the non-blank data rows (see ``_iter_rows``); may be called only once."""
        if self._iterated:
            raise RuntimeError(f"{type(self).__name__}.rows() may only be iterated once")
        self._iterated = True
        return self._iter_rows()

    def _iter_rows(self) -> Iterator[SourceRow]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class CsvSource(RowSource):
    """A CSV file opened for streaming: its format and header, then its rows.

    Build one with :func:`open_csv`; the header has been read by then. ``blank_rows``
    grows while :meth:`rows` is iterated and is final once it is exhausted.
    """

    encoding: str
    delimiter: str
    # What a workbook source also says, so the review and the import need not ask which it is.
    format = "csv"
    sheet: str | None = None
    other_sheets: tuple[str, ...] = ()
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
        self._label = LABELS.get(encoding, encoding)
        self._row = 1  # spreadsheet row of the record being read
        self._record_chars = 0
        self._records = self._read_records(csv.reader(self._lines(), delimiter=delimiter))
        self.header = self._read_header(preamble_lines)
        self.header_row = self._row

    def close(self) -> None:
        """Release the file; a stream passed in by the caller is left open."""
        self._text.close()

    def _iter_rows(self) -> Iterator[SourceRow]:
        """The non-blank data rows, short ones padded with ``""`` to the header's width."""
        width = len(self.header)
        for record in self._records:
            if is_blank(record):
                self.blank_rows += 1
                continue
            if len(record) < width:
                record.extend([""] * (width - len(record)))
            yield SourceRow(self._row, record)

    def _read_header(self, preamble_lines: int) -> list[str]:
        for record in self._records:
            if is_blank(record):
                continue
            if len(self.preamble) < preamble_lines:
                self.preamble.append(self.delimiter.join(record[: width(record)]))
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
                    f"save it again as CSV UTF-8 ({SAVE_AS_CSV})"
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
        if not joined.isascii() and not is_encodable(joined):
            column = next(i for i, cell in enumerate(record, 1) if not is_encodable(cell))
            raise FileRejected(
                f"row {self._row}, column {column} is not valid {self._label} text: "
                f"save the file as CSV UTF-8 ({SAVE_AS_CSV})"
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
        raise FileRejected(too_big(limits.max_file_bytes))
    encoding = detect_encoding(prefix, complete=complete)
    sample = codecs.getincrementaldecoder(encoding)(errors="replace").decode(prefix, final=complete)
    if complete and not sample.strip():
        raise FileRejected("the file is empty")
    delimiter, preamble_lines = choose_layout(sample, complete=complete)
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
            raise FileRejected(too_big(self._max_bytes))
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


def _line_break_length(line: str) -> int:
    if line.endswith("\r\n"):
        return 2
    return 1 if line.endswith(("\r", "\n")) else 0
