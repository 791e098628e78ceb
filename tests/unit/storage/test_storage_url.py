"""DATABASE_URL normalisation: schemes, SSL parameters and timeouts, never leaking the password."""

from __future__ import annotations

import ssl

import pytest

from jangar.storage.url import DatabaseUrlError, normalize_database_url, redact_url


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"])
def test_schemes_become_asyncpg(scheme: str) -> None:
    target = normalize_database_url(f"{scheme}://u:p@db.example:5432/jangar", env={})
    assert target.url == "postgresql+asyncpg://u:p@db.example:5432/jangar"


def test_sslmode_moves_into_connect_args_and_other_params_stay() -> None:
    target = normalize_database_url("postgres://u@db/x?sslmode=require&application_name=jangar", env={})
    assert target.url == "postgresql+asyncpg://u@db/x?application_name=jangar"
    assert target.connect_args["ssl"] == "require"


def test_sslmode_disable_turns_tls_off() -> None:
    assert normalize_database_url("postgres://db/x?sslmode=disable", env={}).connect_args["ssl"] is False


def test_pgsslmode_is_the_fallback_and_the_url_wins() -> None:
    assert (
        normalize_database_url("postgres://db/x", env={"PGSSLMODE": "disable"}).connect_args["ssl"] is False
    )
    url = "postgres://db/x?sslmode=require"
    assert normalize_database_url(url, env={"PGSSLMODE": "disable"}).connect_args["ssl"] == "require"


def test_default_is_require_for_remote_and_prefer_for_local_hosts() -> None:
    assert normalize_database_url("postgres://db.internal/x", env={}).ssl_mode == "require"
    assert normalize_database_url("postgres://127.0.0.1:5432/x", env={}).ssl_mode == "prefer"
    assert normalize_database_url("postgres://u@/x?host=/run/postgresql", env={}).ssl_mode == "prefer"


def test_verify_full_builds_a_verifying_context() -> None:
    target = normalize_database_url("postgres://db/x?sslmode=verify-full", env={})
    context = target.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_missing_ca_file_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUrlError, match="sslrootcert"):
        normalize_database_url("postgres://db/x?sslmode=verify-ca&sslrootcert=/nope.pem", env={})


def test_timeouts_come_from_the_environment() -> None:
    target = normalize_database_url("postgres://db/x", env={"PGCONNECT_TIMEOUT_MS": "1500"})
    assert target.connect_args["timeout"] == 1.5
    assert target.connect_args["command_timeout"] == 20


@pytest.mark.parametrize("bad", ["", "mysql://u:secret@db/x", "postgres://db/x?sslmode=sometimes"])
def test_bad_urls_are_rejected_without_the_password(bad: str) -> None:
    with pytest.raises(DatabaseUrlError) as info:
        normalize_database_url(bad, env={})
    assert "secret" not in str(info.value)


def test_redaction_hides_the_password() -> None:
    assert redact_url("postgresql+asyncpg://u:hunter2@db:5432/x") == "postgresql+asyncpg://u:***@db:5432/x"
    assert normalize_database_url("postgres://u:hunter2@db/x", env={}).redacted.count("hunter2") == 0
