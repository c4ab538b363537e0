"""ImportOptions' match key: checked once, read from text, saved and read back as JSON."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from core.intake.options import ImportOptions, OptionError
from core.vocabulary import MatchKey


def test_no_match_key_means_the_tenants() -> None:
    assert ImportOptions().match_by is None
    assert ImportOptions.from_text({"match_by": ""}).match_by is None


def test_a_match_key_from_text_is_the_vocabularys() -> None:
    assert ImportOptions.from_text({"match_by": "employee-id"}).match_by is MatchKey.EMPLOYEE_ID
    assert ImportOptions(match_by="email").match_by is MatchKey.EMAIL


def test_a_match_key_that_is_none_is_refused_naming_the_option() -> None:
    with pytest.raises(OptionError) as refused:
        ImportOptions.from_text({"match_by": "badge"})
    assert refused.value.option == "match_by"
    assert str(refused.value) == "match_by is 'badge': choose one of email, employee-id"


@pytest.mark.parametrize("match_by", [None, MatchKey.EMAIL, MatchKey.EMPLOYEE_ID])
def test_saved_options_come_back_as_they_were(match_by: MatchKey | None) -> None:
    options = ImportOptions(
        mode="sync",
        invites="at",
        send_at=datetime(2026, 12, 1, 9, 0),
        mapping={"Staff number": "employee_id", "Notes": None},
        match_by=match_by,
    )
    saved = json.loads(json.dumps(options.to_json()))
    assert saved["match_by"] == (None if match_by is None else str(match_by))
    assert ImportOptions.from_json(saved) == options
