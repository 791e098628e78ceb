"""RunEvent validation and sanitising, and the JANGAR_MIGRATIONS parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jangar.storage import MigrationMode, RunEvent, VcsContext, parse_migration_mode
from jangar.storage.events import redact_text

AT = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.mark.parametrize("value", ["skip", "SKIP", "disabled", "false", "0", "off"])
def test_skip_values(value: str) -> None:
    assert parse_migration_mode({"JANGAR_MIGRATIONS": value}) is MigrationMode.SKIP


@pytest.mark.parametrize("env", [{}, {"JANGAR_MIGRATIONS": "auto"}, {"JANGAR_MIGRATIONS": " true "}])
def test_auto_values(env: dict[str, str]) -> None:
    assert parse_migration_mode(env) is MigrationMode.AUTO


def test_skip_migrations_flag_wins() -> None:
    assert (
        parse_migration_mode({"JANGAR_MIGRATIONS": "auto", "JANGAR_SKIP_MIGRATIONS": "1"})
        is MigrationMode.SKIP
    )


def test_a_typo_is_an_error_not_a_migration() -> None:
    with pytest.raises(ValueError, match="JANGAR_MIGRATIONS"):
        parse_migration_mode({"JANGAR_MIGRATIONS": "skp"})


def test_events_need_identity_and_an_aware_time() -> None:
    with pytest.raises(ValueError, match="uid"):
        RunEvent(uid="", namespace="a", name="r", at=AT)
    with pytest.raises(ValueError, match="timezone"):
        RunEvent(uid="u", namespace="a", name="r", at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "secret",
    [
        "ghp_" + "x" * 36,
        "github_pat_" + "y" * 40,
        "glpat-" + "z" * 20,
        "sk-" + "k" * 32,
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NTYifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    ],
)
def test_token_shaped_strings_are_redacted(secret: str) -> None:
    text = redact_text(f"push failed with {secret} for acme/demo")
    assert text is not None
    assert secret not in text and "acme/demo" in text


def test_key_value_secrets_and_url_credentials_are_redacted() -> None:
    text = redact_text("password=hunter2 url https://bot:s3cr3t@git.example/a.git")
    assert text is not None
    assert "hunter2" not in text and "s3cr3t" not in text and "git.example/a.git" in text


def test_repository_urls_lose_their_credentials() -> None:
    vcs = VcsContext(repository="https://x-access-token:abc@github.com/acme/demo.git")
    assert vcs.repository == "https://github.com/acme/demo.git"
    assert VcsContext(repository="acme/demo").repository == "acme/demo"


def test_nul_bytes_and_huge_messages_are_made_storable() -> None:
    event = RunEvent(uid="u", namespace="a", name="r", at=AT, message="a\x00b" + "c" * 100_000)
    assert event.message is not None
    assert "\x00" not in event.message and len(event.message) == 32 * 1024
