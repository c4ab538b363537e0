"""Settings from the environment, the named-queries file, secrets in logs."""

from __future__ import annotations

import pytest

from core.db import QUERIES, parse_queries
from core.errors import ConfigurationError
from core.intake.queries import QUERIES as INTAKE_QUERIES
from core.logs import redact
from core.settings import DEFAULT_DATABASE_URL, Settings
from producer.queries import QUERIES as PRODUCER_QUERIES


def test_settings_default_to_local_services() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.sweep_max_share == 0.25


def test_settings_read_and_convert_the_environment() -> None:
    settings = Settings.from_env(
        {"SWEEP_MAX_SHARE": "0.5", "DB_POOL_SIZE": "3", "REDIS_URL": "redis://r:1/2"}
    )
    assert (settings.sweep_max_share, settings.db_pool_size, settings.redis_url) == (0.5, 3, "redis://r:1/2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE"),
        ({"SWEEP_MAX_SHARE": "25"}, "between 0 and 1"),
        ({"IMPORT_MAX_IN_FLIGHT": "-1"}, "IMPORT_MAX_IN_FLIGHT"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_queries_file_parses_into_named_statements() -> None:
    parsed = parse_queries("-- name: one\n-- says why\nSELECT 1;\n\n-- name: two\nSELECT 2;\n")
    assert parsed == {"one": "-- says why\nSELECT 1", "two": "SELECT 2"}
    assert "claim_finalize" in QUERIES and "sweep_candidates" in QUERIES
    assert "insert_import" in INTAKE_QUERIES and "review_classify_rows" in INTAKE_QUERIES
    assert "api_list_imports" in PRODUCER_QUERIES


def test_no_statement_name_is_owned_by_two_packages() -> None:
    assert not set(QUERIES) & set(PRODUCER_QUERIES)
    assert not set(QUERIES) & set(INTAKE_QUERIES)
    assert not set(INTAKE_QUERIES) & set(PRODUCER_QUERIES)


def test_a_query_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n")


def test_passwords_in_urls_are_redacted() -> None:
    assert (
        redact("cannot reach postgresql://app:s3cret@db:5432/x")
        == "cannot reach postgresql://app:***@db:5432/x"
    )
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
