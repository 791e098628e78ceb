from __future__ import annotations

from jangar.scheduler.contract import build_metadata, check_contract, repository_of
from jangar.scheduler.templating import render_template
from tests.unit.scheduler.objects import agent_run


def test_aliases_copy_only_into_empty_targets() -> None:
    meta = build_metadata(
        {"repo": " acme/demo ", "issue": "7", "repository": "", "title": "T"}, {"text": "x"}
    )
    assert meta["repository"] == "acme/demo"
    assert meta["issueNumber"] == "7"
    assert meta["issueTitle"] == "T"
    meta = build_metadata({"repo": "a/b", "repository": "c/d"}, {"text": "x"})
    assert meta["repository"] == "c/d"


def test_derived_from_implementation_source() -> None:
    impl = {"text": "body", "summary": "sum", "source": {"externalId": "acme/demo#42", "url": "https://x/42"}}
    meta = build_metadata({}, impl)
    assert (meta["repository"], meta["issueNumber"]) == ("acme/demo", "42")
    assert (meta["issueTitle"], meta["issueBody"], meta["issueUrl"], meta["prompt"]) == (
        "sum",
        "body",
        "https://x/42",
        "body",
    )


def test_contract_mappings_satisfy_required_keys() -> None:
    impl = {
        "text": "x",
        "contract": {
            "requiredKeys": ["repository", "issueNumber"],
            "mappings": [
                {"from": "linearRepo", "to": "repository"},
                {"from": "linearIssue", "to": "issueNumber"},
            ],
        },
    }
    result = check_contract({"linearRepo": "acme/demo", "linearIssue": "9"}, impl)
    assert result.reason is None
    assert result.status == {"requiredKeys": ["repository", "issueNumber"], "missingKeys": []}


def test_missing_required_metadata() -> None:
    impl = {"text": "x", "contract": {"requiredKeys": ["repository", "issueNumber"]}}
    result = check_contract({"repository": "a/b"}, impl)
    assert result.reason == "MissingRequiredMetadata"
    assert result.missing_keys == ["issueNumber"]
    assert "issueNumber" in result.message


def test_invalid_contract() -> None:
    result = check_contract({}, {"text": "x", "contract": {"mappings": [{"from": "", "to": "repository"}]}})
    assert result.reason == "InvalidContract"
    assert "mappings[0]" in result.message


def test_repository_of_prefers_status_then_parameters() -> None:
    run = agent_run(parameters={"repo": "Acme/Demo"})
    assert repository_of(run) == "acme/demo"
    run["status"] = {"vcs": {"repository": "Other/Repo"}}
    assert repository_of(run) == "other/repo"
    assert repository_of(agent_run()) is None


def test_template_rendering() -> None:
    ctx = {"a": {"b": "x", "n": 3, "obj": {"k": [1]}}, "list": ["p", "q"]}
    assert render_template("{{a.b}}-{{ a.n }}-{{a.obj}}-{{missing.x}}-{{list.1}}", ctx) == 'x-3-{"k":[1]}--q'
    assert render_template("no placeholders", ctx) == "no placeholders"
