"""The CSVs we write (errors, export): no cell a spreadsheet would execute."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from core.intake.validation import looks_like_formula
from producer.reports import write_csv_row

cells = st.one_of(
    st.text(max_size=30),
    st.builds(lambda c, t: c + t, st.sampled_from("=+-@\t\r|%"), st.text(max_size=20)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(cells, st.none(), st.integers()), min_size=1, max_size=8))
def test_every_cell_written_reads_back_inert_and_unchanged_but_for_a_quote(values: list[object]) -> None:
    out = io.StringIO(newline="")
    write_csv_row(csv.writer(out), values)

    (row,) = list(csv.reader(io.StringIO(out.getvalue(), newline="")))

    assert len(row) == len(values)
    for written, value in zip(row, values, strict=True):
        text = "" if value is None else str(value)
        assert not looks_like_formula(written), written
        assert written in (text, "'" + text)
