"""The layout of a CSV file, guessed from its prefix: the delimiter and the lines above the header."""

from __future__ import annotations

import csv
import io

DELIMITERS = (",", ";", "\t", "|")
MAX_PREAMBLE_LINES = 5
# Records of the prefix weighed when choosing a delimiter, and the share of them
# that must have the header's cell count for a delimiter to count as consistent.
_SAMPLE_RECORDS = 30
_CONSISTENT_SHARE = 0.8


def choose_layout(sample: str, *, complete: bool) -> tuple[str, int]:
    """Choose the delimiter and the number of preamble lines from the prefix.

    Each candidate parses the sample; it must split the header into at least two
    cells, and it is consistent when most following records have the header's cell
    count. Preference: consistent, then no preamble, then more consistent, then
    more columns, then the order of DELIMITERS. Without a winner: ",".
    """
    best: tuple[tuple[bool, bool, int, float, int, int], str, int] | None = None
    for index, delimiter in enumerate(DELIMITERS):
        records = [r for r in _sample_records(sample, delimiter, complete=complete) if not is_blank(r)]
        if not records:
            continue
        skip = count_preamble(records)
        columns = len(records[skip])
        following = records[skip + 1 :]
        share = sum(len(r) == columns for r in following) / len(following) if following else 1.0
        key = (columns > 1, share >= _CONSISTENT_SHARE, -skip, share, columns, -index)
        if best is None or key > best[0]:
            best = (key, delimiter, skip)
    if best is None or not best[0][0]:
        return ",", 0
    return best[1], best[2]


def count_preamble(records: list[list[str]]) -> int:
    """Count the non-blank records before the header.

    Preamble lines are leading lines with at most one non-empty cell, plus at most
    one more line with a third or fewer of the next line's cells ("Report,2024-05-01"
    above a nine-column header) — never more than MAX_PREAMBLE_LINES, and only when
    the header they lead to has at least two cells.
    """
    skip = 0
    while skip < min(MAX_PREAMBLE_LINES, len(records)) and width(records[skip]) <= 1:
        skip += 1
    if (
        skip < MAX_PREAMBLE_LINES
        and skip + 1 < len(records)
        and width(records[skip]) * 3 <= width(records[skip + 1])
    ):
        skip += 1
    if skip >= len(records) or width(records[skip]) < 2:
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


def is_blank(record: list[str]) -> bool:
    return not "".join(record).strip()


def width(record: list[str]) -> int:
    """Cells up to the last non-empty one: Excel pads short rows with delimiters."""
    for index in range(len(record), 0, -1):
        if record[index - 1].strip():
            return index
    return 0
