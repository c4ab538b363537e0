"""SCIM filters and paths (producer.web.scim.filters): parsed, bounded, evaluated on resources."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.web.scim.filters import (
    MAX_DEPTH,
    And,
    AttrPath,
    Compare,
    FilterError,
    Not,
    Or,
    Present,
    ValuePath,
    equality_keys,
    matches,
    parse_filter,
    parse_patch_path,
)
from producer.web.scim.schemas import ENTERPRISE, RESOURCE_SCHEMAS

DANA = {
    "id": "7",
    "userName": "dana@example.com",
    "externalId": "E-1",
    "name": {"givenName": "Dana", "familyName": "Cho"},
    "active": True,
    "emails": [{"value": "dana@example.com", "type": "work", "primary": True}],
    "meta": {"lastModified": "2026-12-01T10:00:00Z"},
    ENTERPRISE: {"department": "Sales"},
}


def test_precedence_is_not_then_and_then_or() -> None:
    tree = parse_filter('userName eq "a" or title pr and not (active eq false)')
    assert tree == Or(
        Compare(AttrPath("userName"), "eq", "a"),
        And(Present(AttrPath("title")), Not(Compare(AttrPath("active"), "eq", False))),
    )


def test_extension_urns_keep_their_dots_and_value_paths_parse() -> None:
    tree = parse_filter(f'{ENTERPRISE}:department eq "Sales" and emails[type eq "work"]', RESOURCE_SCHEMAS)
    assert tree == And(
        Compare(AttrPath("department", schema=ENTERPRISE), "eq", "Sales"),
        ValuePath(AttrPath("emails"), Compare(AttrPath("type"), "eq", "work")),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "DANA@example.com"', True),  # userName ignores case
        ('externalId eq "e-1"', False),  # externalId is case-exact
        ('emails.value eq "dana@example.com"', True),
        ('emails co "example"', True),  # a multi-valued attribute compares by its values
        ('name.givenName sw "Da" and name.familyName ew "ho"', True),
        ('emails[type eq "work" and primary eq true]', True),
        ('emails[type eq "home"]', False),
        ("active eq true", True),
        ("not (active eq true)", False),
        ('meta.lastModified gt "2026-01-01T00:00:00Z"', True),
        ("title pr", False),
        ('title ne "x"', True),
        ('userName eq "x" or id eq "7"', True),
        (f'{ENTERPRISE}:department eq "sales"', True),
    ],
)
def test_evaluation(text: str, expected: bool) -> None:
    assert matches(parse_filter(text, RESOURCE_SCHEMAS), DANA) is expected


@pytest.mark.parametrize(
    "text",
    ["", "userName", "userName eq", 'userName xx "a"', "userName eq a", '(userName eq "a"', 'a eq "b" c'],
)
def test_what_is_not_a_filter_is_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_deep_and_long_filters_are_refused() -> None:
    deep = "(" * (MAX_DEPTH + 2) + 'userName eq "a"' + ")" * (MAX_DEPTH + 2)
    with pytest.raises(FilterError, match="nested"):
        parse_filter(deep)
    with pytest.raises(FilterError, match="characters"):
        parse_filter('userName eq "' + "a" * 5000 + '"')


def test_equality_keys_pick_the_indexed_look_ups() -> None:
    assert equality_keys(parse_filter('userName eq "a@b" and active eq true')) == {"username": "a@b"}
    assert equality_keys(parse_filter('externalId eq "E1"')) == {"externalid": "E1"}
    assert equality_keys(parse_filter('userName eq "a" or userName eq "b"')) is None


def test_patch_paths() -> None:
    path = parse_patch_path('addresses[type eq "work"].locality')
    assert path.path == AttrPath("addresses") and path.sub == "locality"
    assert path.where == Compare(AttrPath("type"), "eq", "work")
    assert parse_patch_path(f"{ENTERPRISE}:department", RESOURCE_SCHEMAS).path.schema == ENTERPRISE
    with pytest.raises(FilterError):
        parse_patch_path("emails[type eq")


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_with_a_filter_error(text: str) -> None:
    try:
        tree = parse_filter(text, RESOURCE_SCHEMAS)
    except FilterError:
        return
    matches(tree, DANA)  # whatever parses can be evaluated


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=50))
def test_string_literals_round_trip(value: str) -> None:
    import json

    tree = parse_filter(f"title eq {json.dumps(value)}")
    assert tree == Compare(AttrPath("title"), "eq", value)
