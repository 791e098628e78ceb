"""Bad configuration stops `jangar serve` at start with exit 2 and a message naming the variable.

The leader-election timings are checked with the runtime's own rule (`timing_problem`), so no timing that
passes settings validation can make `LeaderElectionOptions` raise later (issue 12: renew 10 s, retry 9 s
passed validation and crashed `jangar serve` with an uncaught ValueError).
"""

from __future__ import annotations

import pytest

from jangar import cli
from jangar.app import leader_election_options
from jangar.runtime.leaderelection import JITTER_FACTOR, LeaderElectionOptions, timing_problem
from jangar.settings import Settings, SettingsError, describe

LE = "JANGAR_LEADER_ELECTION_"


def timings(lease: str, renew: str, retry: str, **extra: str) -> dict[str, str]:
    return {
        f"{LE}LEASE_DURATION_SECONDS": lease,
        f"{LE}RENEW_DEADLINE_SECONDS": renew,
        f"{LE}RETRY_PERIOD_SECONDS": retry,
        **extra,
    }


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "variable"),
    [
        ("15", "10", "9", "RETRY_PERIOD_SECONDS"),  # the case: 9 x 1.2 = 10.8 > 10
        ("15", "12", "10", "RETRY_PERIOD_SECONDS"),  # exactly 1.2 x retry = renew: not strictly below
        ("15", "10", "10", "RETRY_PERIOD_SECONDS"),
        ("15", "15", "2", "RENEW_DEADLINE_SECONDS"),
        ("10", "15", "2", "RENEW_DEADLINE_SECONDS"),
        ("15", "5s", "4.5s", "RETRY_PERIOD_SECONDS"),
    ],
)
def test_timings_the_runtime_refuses_are_a_settings_error_naming_the_variable(
    lease: str, renew: str, retry: str, variable: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(timings(lease, renew, retry))
    assert info.value.name == f"{LE}{variable}"
    # ... and the runtime agrees they are unusable.
    with pytest.raises(ValueError):
        LeaderElectionOptions(
            "l", "ns", lease_duration=float(lease.rstrip("s")), renew_deadline=float(renew.rstrip("s")),
            retry_period=float(retry.rstrip("s")),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("lease", "renew", "retry"),
    [("15", "10", "2"), ("15", "10", "8"), ("15", "12.1", "10"), ("3", "2", "1"), ("0.5", "0.4", "0.3")],
)
def test_timings_settings_accept_never_crash_the_runtime(lease: str, renew: str, retry: str) -> None:
    settings = Settings.from_env(timings(lease, renew, retry, JANGAR_POD_NAMESPACE="agents"))
    options = leader_election_options(settings)
    assert options is not None
    assert options.renew_deadline > JITTER_FACTOR * options.retry_period


def test_the_rule_is_one_function_over_a_grid() -> None:
    """Settings and the runtime cannot drift: on a grid of timings, one accepts exactly what the other does."""
    values = [0.5, 1, 2, 5, 8, 8.5, 9, 10, 12, 15, 20]
    for lease in values:
        for renew in values:
            for retry in values:
                env = timings(str(lease), str(renew), str(retry))
                try:
                    Settings.from_env(env)
                    accepted = True
                except SettingsError:
                    accepted = False
                try:
                    LeaderElectionOptions(
                        "l", "ns", lease_duration=lease, renew_deadline=renew, retry_period=retry
                    )
                    runtime_ok = True
                except ValueError:
                    runtime_ok = False
                assert accepted == runtime_ok == (timing_problem(lease, renew, retry) is None), env


def test_timings_are_not_checked_when_election_is_off() -> None:
    """The chart renders the timings either way and checks them only when election is enabled: same here."""
    settings = Settings.from_env(timings("15", "10", "9", **{f"{LE}ENABLED": "false"}))
    assert leader_election_options(settings) is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (timings("15", "10", "9"), f"{LE}RETRY_PERIOD_SECONDS"),
        ({"JANGAR_LOG_LEVEL": "verbose"}, "JANGAR_LOG_LEVEL"),
        ({"JANGAR_PROMETHEUS_METRICS_ENABLED": "maybe"}, "JANGAR_PROMETHEUS_METRICS_ENABLED"),
        ({"JANGAR_HTTP_PORT": "70000"}, "JANGAR_HTTP_PORT"),
    ],
)
def test_jangar_serve_exits_2_naming_the_key(
    env: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [d.env for d in describe()]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and variable in err, err


# ---------------------------------------------------------------------------------------------------
# Every documented enum: each documented value is accepted (case-insensitively), anything else is an error
# naming the variable. The documented values are the ones describe() lists in docs/settings.md.

ENUMS: dict[str, tuple[str, list[str], str]] = {
    # variable: (settings path, documented values, an attribute path to read back)
    "JANGAR_LOG_LEVEL": ("log_level", ["debug", "info", "warning", "error"], "log_level"),
    "JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY": (
        "runner.image_pull_policy",
        ["Always", "IfNotPresent", "Never"],
        "runner.image_pull_policy",
    ),
    "JANGAR_MIGRATIONS": ("database.migrations", ["auto", "skip"], "database.migrations"),
    # issue 13 item 3 (docs/retention.md)
    "JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE": (
        "runtime_debris.mode",
        ["disabled", "report", "delete"],
        "runtime_debris.mode",
    ),
    # `http` also needs JANGAR_AUDIT_SINK_URL (tests/unit/audit/test_audit.py)
    "JANGAR_AUDIT_SINK_TYPE": ("audit.sink_type", ["none", "stdout"], "audit.sink_type"),
}


def _get(settings: Settings, path: str) -> object:
    value: object = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_every_enum_of_the_settings_table_is_tested() -> None:
    """A new `choice(...)` setting (documented as `(a/b/c)`) must be added to ENUMS above."""
    documented = {d.env for d in describe() if d.doc.endswith(")") and "/" in d.doc.rsplit("(", 1)[-1]}
    documented.add("JANGAR_MIGRATIONS")  # custom parser, documented in prose
    assert documented == set(ENUMS)


@pytest.mark.parametrize("variable", sorted(ENUMS))
def test_enum_values(variable: str) -> None:
    path, values, attribute = ENUMS[variable]
    for value in values:
        for spelling in (value, value.upper(), value.lower()):
            assert _get(Settings.from_env({variable: spelling}), attribute) == value, spelling
    for bad in ("bogus", "always-ish", values[0] + "x"):
        with pytest.raises(SettingsError) as info:
            Settings.from_env({variable: bad})
        assert info.value.name == variable
    assert any(d.env == variable and d.path == path for d in describe())


def test_enum_aliases() -> None:
    assert Settings.from_env({"JANGAR_LOG_LEVEL": "warn"}).log_level == "warning"
    assert Settings.from_env({"JANGAR_SKIP_MIGRATIONS": "true"}).database.migrations == "skip"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"JANGAR_SKIP_MIGRATIONS": "perhaps"})
    assert info.value.name == "JANGAR_SKIP_MIGRATIONS"


@pytest.mark.parametrize("path", ["metrics", "/", "/health", "/ready", "/healthz/x", "/v1/agent-runs"])
def test_a_metrics_path_that_would_collide_is_refused(path: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"JANGAR_PROMETHEUS_METRICS_PATH": path})
    assert info.value.name == "JANGAR_PROMETHEUS_METRICS_PATH"


@pytest.mark.parametrize(
    ("path", "expected"), [("/prom", "/prom"), ("/prom/", "/prom"), ("/metricsx", "/metricsx")]
)
def test_metrics_paths(path: str, expected: str) -> None:
    assert Settings.from_env({"JANGAR_PROMETHEUS_METRICS_PATH": path}).metrics_path == expected
