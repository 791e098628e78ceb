"""`agentctl run render --offline` / `jangar render --offline`: files in, the controller's objects out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jangar import agentctl, cli, rendercli
from jangar.admission import Admit
from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.agentrun.snapshot import RunSnapshot
from jangar.services.render import RenderError, render_run
from jangar.settings import Settings
from jangar.validation import ObjectLookup
from tests.unit.controllers.agentrun_objects import NOW

GROUP = "agents.proompteng.ai/v1alpha1"
DEPS = [
    {
        "apiVersion": GROUP,
        "kind": "AgentProvider",
        "metadata": {"name": "codex"},
        "spec": {"binary": "/bin/codex"},
    },
    {
        "apiVersion": GROUP,
        "kind": "Agent",
        "metadata": {"name": "coder"},
        "spec": {"providerRef": {"name": "codex"}},
    },
    {
        "apiVersion": GROUP,
        "kind": "ImplementationSpec",
        "metadata": {"name": "task"},
        "spec": {"text": "do it"},
    },
]


def agent_run(name: str = "r1", **spec: Any) -> dict[str, Any]:
    body = {
        "agentRef": {"name": "coder"},
        "implementationSpecRef": {"name": "task"},
        "runtime": {"type": "job"},
    }
    return {
        "apiVersion": GROUP,
        "kind": "AgentRun",
        "metadata": {"name": name, "namespace": "agents"},
        "spec": body | spec,
    }


@pytest.fixture(autouse=True)
def runner_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANGAR_AGENT_RUNNER_IMAGE", "runner:1")


def write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_offline_render_prints_the_configmaps_then_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = ["-f", write(tmp_path, "run.yaml", agent_run()), "-f", write(tmp_path, "deps.yaml", *DEPS)]
    assert agentctl.main(["run", "render", "--offline", *files]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("ConfigMap", "r1-spec"), ("Job", "r1-job")]
    job = docs[1]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "runner:1"
    assert "ownerReferences" not in job["metadata"]  # a run that was never created has no uid
    assert json.loads(docs[0]["data"]["run.json"])["agentRun"]["name"] == "r1"


def test_the_render_is_the_controllers_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same inputs, same objects: render goes through `decide`, nothing else."""
    run = agent_run(workload={"image": "img:2"})
    assert cli.main(["render", "--offline", "-o", "json", "-f", write(tmp_path, "all.yaml", run, *DEPS)]) == 0
    printed = json.loads(capsys.readouterr().out)["items"]
    lookup = ObjectLookup(DEPS)
    meta = run["metadata"] | {
        "finalizers": [FINALIZER_RUNTIME_CLEANUP],
        "creationTimestamp": "2026-06-01T12:00:00Z",
    }
    snap = RunSnapshot(
        run=run | {"metadata": meta},
        now=NOW,
        settings=Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"}),
        lookup=lookup,
    )
    plan = decide(snap, Admit(NOW))
    assert plan.create is not None
    assert printed == [*plan.create.configmaps, plan.create.job]


def test_a_workflow_renders_one_job_per_step_or_the_one_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = agent_run(runtime={"type": "workflow"}, workflow={"steps": [{"name": "plan"}, {"name": "build"}]})
    path = write(tmp_path, "all.yaml", run, *DEPS)
    assert rendercli.main(["--offline", "-f", path]) == 0
    jobs = [d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "Job"]
    assert jobs == ["r1-step-1-attempt-1", "r1-step-2-attempt-1"]
    assert rendercli.main(["--offline", "-f", path, "--step", "build"]) == 0
    jobs = [d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "Job"]
    assert jobs == ["r1-step-2-attempt-1"]
    assert rendercli.main(["--offline", "-f", path, "--step", "ship"]) == 2
    assert "no step 'ship'" in capsys.readouterr().err


def test_a_run_the_controller_would_refuse_prints_its_reason_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "all.yaml", agent_run(parameters={"n": 1}), *DEPS)
    assert rendercli.main(["--offline", "-f", path]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "ParameterNotString" in captured.err
    missing = write(tmp_path, "missing.yaml", agent_run(), *DEPS[:1])
    assert rendercli.main(["--offline", "-f", missing]) == 1
    err = capsys.readouterr().err
    assert "MissingAgent" in err and "waiting" not in err


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        ([], "exactly one AgentRun, found 0"),
        ([agent_run("a"), agent_run("b")], "exactly one AgentRun, found 2"),
        ([agent_run() | {"metadata": {"namespace": "agents"}}], "metadata.name is required"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], docs: list[dict[str, Any]], message: str
) -> None:
    path = write(tmp_path, "in.yaml", *docs, *DEPS)
    assert rendercli.main(["--offline", "-f", path]) == 2
    assert message in capsys.readouterr().err


def test_unreadable_or_invalid_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rendercli.main(["--offline", "-f", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed")
    assert rendercli.main(["--offline", "-f", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text")
    assert rendercli.main(["--offline", "-f", str(scalar)]) == 2


def test_a_list_document_and_stdin_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    listing = {"apiVersion": "v1", "kind": "List", "items": [agent_run(), *DEPS]}
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(listing)))
    assert rendercli.main(["--offline", "-f", "-"]) == 0
    assert "kind: Job" in capsys.readouterr().out


def test_bad_controller_settings_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JANGAR_AGENTRUN_WORKERS", "0")
    assert rendercli.main(["--offline", "-f", write(tmp_path, "a.yaml", agent_run(), *DEPS)]) == 2
    assert "JANGAR_AGENTRUN_WORKERS" in capsys.readouterr().err


def test_render_with_server_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        agentctl.main(["--server", "x:1", "run", "render", "-f", write(tmp_path, "a.yaml", agent_run())])
    assert exit_.value.code == 2
    assert "--server is not supported" in capsys.readouterr().err


def test_render_run_refuses_what_is_not_an_agentrun() -> None:
    with pytest.raises(RenderError, match="expected an AgentRun"):
        render_run({"kind": "Agent"}, ObjectLookup(), Settings(), now=NOW)
    with pytest.raises(RenderError, match="workflow runs only"):
        render_run(agent_run(), ObjectLookup(DEPS), Settings(), now=NOW, step="plan")


def test_render_sees_the_branch_another_active_run_holds() -> None:
    """The controller suffixes a head branch another unfinished run of the repository uses; so does render."""
    vcs = {
        "apiVersion": GROUP,
        "kind": "VersionControlProvider",
        "metadata": {"name": "github"},
        "spec": {
            "provider": "github",
            "auth": {"method": "token", "token": {"secretRef": {"name": "gh"}}},
            "defaults": {
                "branchTemplate": "codex/{{ parameters.issue }}",
                "branchConflictSuffixTemplate": "2",
            },
        },
    }
    binding = {
        "kind": "SecretBinding",
        "metadata": {"name": "b"},
        "spec": {"subjects": [{"kind": "Agent", "name": "coder"}], "allowedSecrets": ["gh"]},
    }
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "acme/x", "issue": "7"})
    other = {
        "metadata": {"name": "other"},
        "status": {"phase": "Running", "vcs": {"repository": "acme/x", "headBranch": "codex/7"}},
    }
    settings = Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"})

    def head(active: list[dict[str, Any]]) -> Any:
        out = render_run(run, ObjectLookup([*DEPS, vcs, binding]), settings, now=NOW, active_runs=active)
        assert out.ok, out.message
        env = {
            e["name"]: e.get("value")
            for e in out.objects[-1]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        return next(v for k, v in env.items() if "HEAD" in k and "BRANCH" in k)

    assert head([]) == "codex/7"
    assert head([other]) == "codex/7-2"


def test_render_shows_the_agents_system_prompt_as_the_controller_delivers_it() -> None:
    """issue 13 item 3: an inline prompt becomes the run's prompt ConfigMap; a ref whose ConfigMap is not
    among the objects is reported as the controller would hold the run (SystemPromptNotFound)."""
    settings = Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"})
    prompted = {**DEPS[1], "spec": {**DEPS[1]["spec"], "defaults": {"systemPrompt": "Be careful."}}}
    out = render_run(agent_run(), ObjectLookup([DEPS[0], prompted, DEPS[2]]), settings, now=NOW)
    assert out.ok, out.message
    cms = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "ConfigMap"}
    assert cms["r1-system-prompt"]["data"] == {"system-prompt.md": "Be careful."}
    by_ref = {
        **DEPS[1],
        "spec": {**DEPS[1]["spec"], "defaults": {"systemPromptRef": {"kind": "ConfigMap", "name": "p"}}},
    }
    missing = render_run(agent_run(), ObjectLookup([DEPS[0], by_ref, DEPS[2]]), settings, now=NOW)
    assert missing.reason == "SystemPromptNotFound"
