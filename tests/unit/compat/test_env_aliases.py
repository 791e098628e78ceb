"""issue 13 item 1: the 0.9.29 `AGENTS_*` names are aliases of the `JANGAR_*` ones (`JANGAR_*` wins)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from jangar import cli
from jangar.settings import ENV_ALIASES, Settings, SettingsError, alias_conflicts, describe


def test_every_declared_jangar_variable_has_exactly_its_agents_twin() -> None:
    declared = {row.env for row in describe() if row.env.startswith("JANGAR_")}
    assert set(ENV_ALIASES.values()) == declared
    for alias, name in ENV_ALIASES.items():
        assert alias == "AGENTS_" + name.removeprefix("JANGAR_")
    # the names the drift document gives for 0.9.29
    assert ENV_ALIASES["AGENTS_GRPC_TOKEN"] == "JANGAR_GRPC_TOKEN"


def test_an_alias_alone_is_read() -> None:
    settings = Settings.from_env({"AGENTS_HTTP_PORT": "9090", "AGENTS_GRPC_TOKEN": "s3cret"})
    assert settings.http_port == 9090
    assert settings.grpc.token == "s3cret"


def test_the_jangar_name_wins_over_the_alias() -> None:
    settings = Settings.from_env({"AGENTS_HTTP_PORT": "9090", "JANGAR_HTTP_PORT": "7070"})
    assert settings.http_port == 7070


def test_a_blank_jangar_variable_lets_the_alias_through() -> None:
    assert Settings.from_env({"JANGAR_HTTP_PORT": " ", "AGENTS_HTTP_PORT": "9090"}).http_port == 9090


def test_unknown_agents_names_are_ignored() -> None:
    assert Settings.from_env({"AGENTS_NO_SUCH_THING": "garbage"}) == Settings.from_env({})


def test_both_set_differently_warns_naming_both_never_the_values() -> None:
    env = {"AGENTS_GRPC_TOKEN": "alias-secret", "JANGAR_GRPC_TOKEN": "jangar-secret"}
    with capture_logs() as logs:
        settings = Settings.from_env(env)
    assert settings.grpc.token == "jangar-secret"
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["used"] == "JANGAR_GRPC_TOKEN"
    assert warnings[0]["ignored"] == "AGENTS_GRPC_TOKEN"
    assert "secret" not in repr(warnings)


def test_both_set_to_the_same_value_is_no_warning() -> None:
    env = {"AGENTS_HTTP_PORT": "9090", "JANGAR_HTTP_PORT": "9090"}
    assert alias_conflicts(env) == []
    with capture_logs() as logs:
        Settings.from_env(env)
    assert [entry for entry in logs if entry["log_level"] == "warning"] == []


def test_an_invalid_alias_value_is_an_error_naming_the_alias() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"AGENTS_HTTP_PORT": "eighty"})
    assert err.value.name == "AGENTS_HTTP_PORT"
    assert str(err.value).startswith("AGENTS_HTTP_PORT: ")


def test_an_invalid_jangar_value_still_names_the_jangar_variable() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"JANGAR_HTTP_PORT": "eighty", "AGENTS_HTTP_PORT": "80"})
    assert err.value.name == "JANGAR_HTTP_PORT"


def test_jangar_serve_exits_2_naming_the_alias(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JANGAR_LEADER_ELECTION_ENABLED", raising=False)
    monkeypatch.setenv("AGENTS_LEADER_ELECTION_ENABLED", "maybe")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "AGENTS_LEADER_ELECTION_ENABLED" in err
    assert "maybe" in err  # the offending value is shown back, as for the JANGAR_* names


def test_the_names_docs_call_ignored_have_no_jangar_twin() -> None:
    """docs/compatibility.md lists 0.9.29 variables jangar ignores (no `JANGAR_*` twin): none of them may be
    an alias jangar reads (AGENTS_AGENT_RUNNER_RESOURCES was listed after JANGAR_AGENT_RUNNER_RESOURCES came)."""
    import re
    from pathlib import Path

    text = Path(__file__).parents[3].joinpath("docs", "compatibility.md").read_text()
    start = text.index("Variables the 0.9.29 reference has")
    listed = text[start : text.index("twin and are ignored", start)]
    names = re.findall(r"`(AGENTS_[A-Z0-9_]+)`", listed)
    assert "AGENTS_SERVER_PROFILE" in names
    assert [n for n in names if n in ENV_ALIASES] == []
