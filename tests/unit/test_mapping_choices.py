"""An admin's column choices in header matching, and the errors file's own columns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.columns import COLUMNS, COLUMNS_BY_NAME, TEMPLATE_HEADERS
from core.errors import BulkImportError
from core.intake.choices import overlay_choices
from core.intake.mapping import map_header, normalise

BASIC = ["Email", "First name", "Last name"]


def test_a_choice_maps_a_column_nothing_matched() -> None:
    mapping = map_header([*BASIC, "Titre du poste"], {"Titre du poste": "job_title"})

    assert mapping.matched["Titre du poste"] == "job_title"
    assert mapping.fields["job_title"] == 3
    assert mapping.unmatched == []
    assert mapping.chosen == {"Titre du poste": "job_title"}


def test_choices_are_matched_by_their_normalised_text_and_reported_as_in_the_file() -> None:
    mapping = map_header([*BASIC, " Titre du Poste "], {"titre-du-poste": "job_title"})

    assert mapping.chosen == {"Titre du Poste": "job_title"}
    assert mapping.matched["Titre du Poste"] == "job_title"


def test_a_choice_overrides_an_automatic_match_and_the_other_column_is_a_duplicate() -> None:
    mapping = map_header(["Email", "Given", "First name", "Last name"], {"Given": "first_name"})

    assert mapping.fields["first_name"] == 1
    assert mapping.matched["Given"] == "first_name"
    assert "First name" not in mapping.matched
    assert mapping.duplicates == ["First name"]


def test_a_matched_column_can_be_remapped_or_ignored() -> None:
    mapping = map_header([*BASIC, "Job title", "Location"], {"Job title": "location", "Location": None})

    assert mapping.fields["location"] == 3
    assert "job_title" not in mapping.fields
    assert mapping.ignored == ["Location"]
    assert mapping.chosen == {"Job title": "location", "Location": None}


def test_ignoring_a_required_column_makes_it_missing() -> None:
    mapping = map_header(BASIC, {"Email": None})

    assert mapping.missing_required == ["email"]
    assert mapping.ignored == ["Email"]


def test_an_unknown_field_is_refused_listing_the_fields() -> None:
    with pytest.raises(BulkImportError) as error:
        map_header([*BASIC, "Notes"], {"Notes": "notes"})

    message = str(error.value)
    assert "'Notes'" in message and "'notes' is not a field" in message
    assert all(name in message for name in COLUMNS_BY_NAME)


def test_two_columns_chosen_for_one_field_are_refused() -> None:
    with pytest.raises(BulkImportError, match="'Given' and 'Prénom' are both chosen for 'first_name'"):
        map_header([*BASIC, "Given", "Prénom"], {"Given": "first_name", "Prénom": "first_name"})


def test_two_different_choices_for_one_column_are_refused() -> None:
    with pytest.raises(BulkImportError, match="one column with two choices"):
        map_header([*BASIC, "Notes"], {"Notes": "job_title", "NOTES": None})


def test_a_choice_for_a_column_the_file_lacks_is_refused_listing_its_columns() -> None:
    with pytest.raises(BulkImportError) as error:
        map_header(BASIC, {"Notes": None})

    assert "no column 'Notes'" in str(error.value)
    assert "Email, First name, Last name" in str(error.value)


def test_the_errors_files_own_columns_are_ignored() -> None:
    mapping = map_header(["Row", *TEMPLATE_HEADERS, "Reason"])

    assert mapping.ignored == ["Row", "Reason"]
    assert mapping.unmatched == []
    assert mapping.missing_required == []
    assert mapping.fields["email"] == TEMPLATE_HEADERS.index("Email") + 1


def test_row_and_reason_elsewhere_are_ordinary_columns() -> None:
    mapping = map_header(["Reason", *BASIC, "Row"])

    assert mapping.ignored == []
    assert mapping.unmatched == ["Reason", "Row"]


def test_no_alias_is_one_of_the_errors_files_columns() -> None:
    names = {normalise(a) for field in COLUMNS for a in (field.name, field.header, *field.aliases)}
    assert not {"row", "reason"} & names


def test_explicit_choices_win_over_remembered_ones() -> None:
    remembered = {"Given": "first_name", "Notes": None, "Titre": "job_title"}
    explicit = {"notes": "location", "Prénom": "first_name"}

    effective, from_memory = overlay_choices(remembered, explicit)

    # "Given" is dropped: the explicit choices take first_name.
    assert effective == {"notes": "location", "Prénom": "first_name", "Titre": "job_title"}
    assert from_memory == ["Titre"]


header_cells = st.one_of(st.text(max_size=12), st.sampled_from([*TEMPLATE_HEADERS, "Row", "Reason", ""]))


@settings(max_examples=200)
@given(st.lists(header_cells, min_size=1, max_size=10), st.data())
def test_with_choices_every_header_lands_in_exactly_one_list(header: list[str], data: st.DataObject) -> None:
    shown = [raw.replace("\ufeff", "").strip() or f"(column {i + 1})" for i, raw in enumerate(header)]
    picked = data.draw(st.lists(st.sampled_from(shown), unique_by=normalise, max_size=3))
    fields = data.draw(st.lists(st.sampled_from(list(COLUMNS_BY_NAME)), unique=True, min_size=3, max_size=3))
    choices = {text: data.draw(st.sampled_from([None, fields[i]])) for i, text in enumerate(picked)}
    mapping = map_header(header, choices)
    lists = (mapping.matched, mapping.unmatched, mapping.duplicates, mapping.ignored)
    assert sum(len(texts) for texts in lists) == len(header)
    for text, field in mapping.chosen.items():
        if field is None:
            assert text in mapping.ignored
        else:
            # Two cells folding to one text ("O", "Ò") share the choice; the first is used.
            assert mapping.matched.get(text) == field or text in mapping.duplicates
