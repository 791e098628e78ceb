from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from jangar.scheduler.naming import (
    auth_volume_names,
    inputs_configmap_name,
    job_name,
    label_value,
    shorten,
    spec_configmap_name,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_reference_names() -> None:
    assert job_name("run-1") == "run-1-job"
    assert spec_configmap_name("run-1") == "run-1-spec"
    assert inputs_configmap_name("run-1") == "run-1-inputs"
    assert job_name("run-1", (2, 3)) == "run-1-step-2-attempt-3"
    assert spec_configmap_name("run-1", (1, 1)) == "run-1-spec-step-1-attempt-1"
    assert auth_volume_names("run-1") == ("run-1-auth-home", "run-1-auth-secret")


def test_long_names_are_shortened_with_a_stable_distinct_hash() -> None:
    a = "a" * 80 + "-one"
    b = "a" * 80 + "-two"
    assert len(job_name(a)) == 63
    assert job_name(a) == job_name(a)
    assert job_name(a) != job_name(b)
    assert DNS_LABEL.match(job_name(a))


def test_shorten_keeps_short_values() -> None:
    assert shorten("abc") == "abc"
    assert len(shorten("x" * 64)) == 63


def test_label_value_rules() -> None:
    assert label_value("Provider_One") == "provider_one"
    assert label_value("--weird name!!") == "weird-name"
    assert label_value("") == "unknown"
    assert label_value(None) == "unknown"
    long = label_value("r" * 100)
    assert len(long) == 63 and long == label_value("r" * 100)


@given(st.text(min_size=1, max_size=300))
def test_job_names_are_always_valid_dns_labels(name: str) -> None:
    result = job_name(name)
    assert len(result) <= 63
    assert DNS_LABEL.match(result), result


@given(st.text(max_size=300))
def test_label_values_are_always_valid(value: str) -> None:
    result = label_value(value)
    assert len(result) <= 63
    assert LABEL_VALUE.match(result), result
