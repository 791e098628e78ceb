"""agentctl's kubectl-style verbs (`jangar.ctl`), pure parts: input checks (exit 2 messages), printing,
the retry manifest, `wait` polling against a fake backend, and the bash completion script run by bash."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from jangar.agentctl import build_parser
from jangar.api.contract import ANNOTATION_CANCEL, ANNOTATION_RETRY_VERB, LABEL_RETRY_OF
from jangar.api.printing import resolve_kind
from jangar.ctl import commands
from jangar.ctl.completion import script, tree
from jangar.ctl.errors import BadInput, CtlError
from jangar.ctl.parsing import WaitFor, check_selector, kind_of, parse_duration, parse_for, retry_name
from jangar.ctl.printing import describe_text, format_objects

AR = resolve_kind("AgentRun")
NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "hint"),
    [("agentrn", "agentrun"), ("orchestratoins", "orchestrations"), ("Memry", "memory"), ("zzz", None)],
)
def test_unknown_kind_suggests_the_closest(typed: str, hint: str | None) -> None:
    with pytest.raises(BadInput) as err:
        kind_of(typed)
    assert err.value.code == 2
    assert (
        (f"did you mean {hint!r}?" in err.value.message)
        if hint
        else ("did you mean" not in err.value.message)
    )


def test_kind_names_resolve_in_any_form() -> None:
    assert {kind_of(n).kind for n in ("AgentRun", "agentruns", "agentrun", "AR")} == {"AgentRun"}


@pytest.mark.parametrize(
    "selector", ["a=b", "a==b,c!=d", "app.kubernetes.io/name=x", "!gone", "tier in (a, b),x notin (y)", "k"]
)
def test_good_selectors(selector: str) -> None:
    check_selector(selector)


@pytest.mark.parametrize("selector", ["a=(b", "=b", "a b", "tier in (a", "a=b,,c", "a=b=c"])
def test_bad_selectors_exit_2(selector: str) -> None:
    with pytest.raises(BadInput, match="bad label selector"):
        check_selector(selector)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("12", 12), ("0.5s", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadInput, match="bad duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("condition=Ready", WaitFor("condition", "Ready", "True")),
        ("condition=Ready=False", WaitFor("condition", "Ready", "False")),
        ("phase=Succeeded", WaitFor("phase", "Succeeded")),
        ("delete", WaitFor("delete")),
    ],
)
def test_wait_for(text: str, wanted: WaitFor) -> None:
    assert parse_for(text) == wanted


@pytest.mark.parametrize("text", ["phase", "phase=", "condition=", "condition=Ready=", "state=x", "deleted"])
def test_bad_wait_for(text: str) -> None:
    with pytest.raises(BadInput, match="bad --for"):
        parse_for(text)


def test_retry_names_are_fresh_dns_names() -> None:
    assert retry_name("run-1", "abcde") == "run-1-rabcde"
    assert retry_name("run-1-r01234", "abcde") == "run-1-rabcde"  # a retry of a retry does not grow
    long = retry_name("x" * 63)
    assert len(long) <= 63 and long.startswith("x" * 56 + "-r")
    assert retry_name("a") != retry_name("a")


def _run(name: str, phase: str | None = None, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"agentRef": {"name": "a"}, "parameters": {"k": "v"}},
    }
    if phase:
        obj["status"] = {"phase": phase, **status}
    return obj


def test_table_name_json_and_headerless_watch_rows() -> None:
    objs = [_run("a", "Running"), _run("bb", "Failed")]
    text = format_objects(AR, objs, None, single=False, namespaces=True, now=NOW)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "PHASE"]
    assert lines[2].split()[:3] == ["ns", "bb", "Failed"] and lines[2].split()[-1] == "10m"
    assert format_objects(AR, objs, "name", single=False, namespaces=False) == (
        "agentruns.agents.proompteng.ai/a\nagentruns.agents.proompteng.ai/bb"
    )
    assert '"kind": "List"' in format_objects(AR, objs, "json", single=False, namespaces=False)
    assert json.loads(format_objects(AR, objs[:1], "json", single=True, namespaces=False)) == objs[0]
    rows = format_objects(AR, objs[1:], None, single=False, namespaces=False, now=NOW, headers=False)
    assert rows.split()[:2] == ["bb", "Failed"]


def test_describe_sections() -> None:
    obj = _run(
        "a",
        "Failed",
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": "Boom",
                "message": "it broke",
                "lastTransitionTime": "2026-01-01T00:05:00Z",
            }
        ],
    )
    children = [("Pods", ["NAME", "PHASE"], [["a-pod", "Failed"]]), ("Jobs", ["NAME"], [])]
    events = [
        {
            "type": "Warning",
            "reason": "JobFailed",
            "message": "m",
            "lastTimestamp": "2026-01-01T00:09:00Z",
            "source": {"component": "agents-controller"},
        }
    ]
    text = describe_text(AR, obj, children=children, events=events, now=NOW)
    lines = text.splitlines()
    assert "Spec:" in lines and "  agentRef:" in lines and "    name:  a" in lines
    assert "  phase:  Failed" in lines
    cond = next(line for line in lines if line.startswith("  Failed"))
    assert cond.split() == ["Failed", "True", "Boom", "5m", "it", "broke"]
    assert lines[lines.index("Jobs:") + 1] == "  <none>"
    assert next(line for line in lines if "JobFailed" in line).split() == [
        "Warning",
        "JobFailed",
        "1m",
        "agents-controller",
        "m",
    ]
    remote = describe_text(AR, obj, children=None, events=None, now=NOW)
    assert "Events:       <not available: the API refused to list them>" in remote
    assert "Children:     <not available: the API refused to list them>" in remote


def test_resubmit_manifest_copies_the_spec_not_the_identity() -> None:
    old = _run("a", "Failed")
    old["spec"]["idempotencyKey"] = "k"
    old["metadata"].update(
        uid="u",
        resourceVersion="9",
        labels={"team": "x", "agents.proompteng.ai/agent": "a"},
        annotations={ANNOTATION_CANCEL: "true", "note": "n"},
    )
    new = commands.resubmit_manifest(old, "retry", "a-r12345")
    assert new["metadata"] == {
        "name": "a-r12345",
        "namespace": "ns",
        "labels": {"team": "x", LABEL_RETRY_OF: "a"},
        "annotations": {"note": "n", ANNOTATION_RETRY_VERB: "retry"},
    }
    assert new["spec"] == {"agentRef": {"name": "a"}, "parameters": {"k": "v"}} and "status" not in new


class FakeBackend:
    mode = "fake"

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers
        self.calls = 0

    async def get(self, info: Any, name: str, namespace: str) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if answer is None:
            raise CtlError(f'agentruns.agents.proompteng.ai "{name}" not found')
        return answer


def _wait_args(for_: str, timeout: float, *names: str) -> argparse.Namespace:
    return argparse.Namespace(
        info=AR, names=list(names), namespace="ns", for_=parse_for(for_), timeout_s=timeout
    )


def test_wait_polls_until_met(capsys: pytest.CaptureFixture[str]) -> None:
    done = _run("a", "Running", conditions=[{"type": "Succeeded", "status": "True"}])
    backend = FakeBackend([_run("a", "Pending"), _run("a", "Running"), done])
    assert asyncio.run(commands._wait(backend, _wait_args("condition=succeeded", 30, "a"))) == 0  # type: ignore[arg-type]
    assert backend.calls == 3 and capsys.readouterr().out == "agentrun.agents.proompteng.ai/a condition met\n"


def test_wait_times_out_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    backend = FakeBackend([_run("a", "Running")])
    assert asyncio.run(commands._wait(backend, _wait_args("phase=Succeeded", 0, "a"))) == 1  # type: ignore[arg-type]
    assert "timed out waiting for the phase Succeeded on agentruns/a" in capsys.readouterr().err


def test_wait_for_delete_and_missing_objects() -> None:
    gone = FakeBackend([_run("a"), None])
    assert asyncio.run(commands._wait(gone, _wait_args("delete", 30, "a"))) == 0  # type: ignore[arg-type]
    with pytest.raises(CtlError, match="not found"):
        asyncio.run(commands._wait(FakeBackend([None]), _wait_args("phase=Succeeded", 30, "a")))  # type: ignore[arg-type]


def test_verbs_reject_bad_input_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from jangar.agentctl import main

    for argv, message in [
        (["get", "agentrn"], "did you mean 'agentrun'?"),
        (["describe", "nope", "x"], "unknown kind 'nope'"),
        (["get", "ar", "-o", "xml"], "invalid choice: 'xml'"),
        (["list", "ar", "-l", "a=(b"], "bad label selector"),
        (["get", "ar", "x", "-l", "a=b"], "NAME cannot be combined"),
        (["wait", "ar", "x", "--for=ready"], "bad --for"),
        (["cancel", "memory", "m"], "cancel applies to runs"),
        (["logs", "memory/m"], "logs are a run's"),
        (["watch", "ar", "--timeout", "later"], "bad duration"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2, argv
        assert message in capsys.readouterr().err, argv


def test_completion_tree_covers_every_verb() -> None:
    parsed = tree(build_parser())
    assert set(commands.VERBS) <= set(parsed[""][0])
    assert "--for" in parsed["wait"][1] and "--step" in parsed["logs"][1] and "submit" in parsed["run"][0]


def _complete(words: list[str], bash_script: str) -> list[str]:
    line = " ".join(words)
    program = (
        f"{bash_script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        "_agentctl_complete; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.split()


def test_bash_completion_completes_nouns_verbs_flags_kinds_and_formats() -> None:
    bash = script(build_parser(), "bash")
    assert {"describe", "delete"} <= set(_complete(["agentctl", "de"], bash))
    assert _complete(["agentctl", "run", "sub"], bash) == ["submit"]
    assert "--follow" in _complete(["agentctl", "logs", "--"], bash)
    assert set(_complete(["agentctl", "-n", "x", "get", "agentr"], bash)) == {"agentrun", "agentruns"}
    assert _complete(["agentctl", "get", "ar", "-o", "ya"], bash) == ["yaml"]
    assert _complete(["agentctl", "wait", "ar", "x", "--for", "phase=S"], bash) == ["phase=Succeeded"]
    assert script(build_parser(), "zsh").startswith("#compdef agentctl")


# -- zsh and bash syntax of the generated scripts (issue 13 item 4: shell completion) ---------------------

ZSH = shutil.which("zsh")


def test_bash_completion_script_parses() -> None:
    done = subprocess.run(
        ["bash", "-n"],
        input=script(build_parser(), "bash"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(ZSH is None, reason="zsh is not installed (apt-get install -y zsh)")
def test_zsh_completion_script_parses_registers_and_completes() -> None:
    """`zsh -n` accepts the script; sourced in `zsh -f` it registers agentctl with compsys (bashcompinit's
    `complete`), and the function, called as bashcompinit's `compgen -F` calls it (sh emulation, 0-based
    arrays), offers the kinds. zsh filters by the typed prefix itself (compadd), so COMPREPLY is unfiltered."""
    assert ZSH is not None
    zsh_script = script(build_parser(), "zsh")
    done = subprocess.run(
        [ZSH, "-n"], input=zsh_script, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    program = (
        f'{zsh_script}\nprint -r -- "registered: ${{_comps[agentctl]}}"\n'
        "emulate sh; setopt kshglob noshglob braceexpand\n"
        "COMP_WORDS=(agentctl -n x get agentr); COMP_CWORD=4\n"
        '_agentctl_complete; print -l -- "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(agentctl get ar -o); COMP_CWORD=4\n"
        '_agentctl_complete; print -r -- "outputs: ${COMPREPLY[*]}"\n'
    )
    done = subprocess.run(
        [ZSH, "-f", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": "/tmp"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "registered: _bash_complete -F _agentctl_complete" in lines
    assert {"agentrun", "agentruns"} <= {w for w in lines if w.startswith("agentr")}
    assert "memory" in lines  # unfiltered: every kind name
    assert next(line for line in lines if line.startswith("outputs:")).split()[1:] == [
        "wide",
        "yaml",
        "json",
        "name",
    ]


def test_children_tables_of_a_run_and_of_an_orchestration_run() -> None:
    """describe's children, from `jangar.services.related.Related` (what both modes fetch), round-tripped
    through the JSON the gRPC `DescribeResource` method sends."""
    from jangar.api.contract import LABEL_STEP
    from jangar.ctl.printing import children_tables
    from jangar.services.related import Related

    job = {
        "metadata": {"name": "a-step-1-attempt-1", "labels": {LABEL_STEP: "plan"}},
        # Kubernetes >= 1.31 lists SuccessCriteriaMet first: the finished Job still reads Complete
        "status": {
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
            "succeeded": 1,
        },
    }
    pod = {
        "metadata": {"name": "a-step-1-attempt-1-x", "labels": {LABEL_STEP: "plan"}},
        "spec": {"nodeName": "kwok-node-0"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "runner", "state": {"terminated": {"exitCode": 0}}}],
        },
    }
    related = Related.from_json(json.loads(json.dumps(Related(jobs=[job], pods=[pod]).to_json())))
    (jobs_title, _, jobs), (pods_title, _, pods) = children_tables("AgentRun", related)
    assert (jobs_title, jobs) == ("Jobs", [["a-step-1-attempt-1", "plan", "Complete", "1", "0"]])
    assert (pods_title, pods) == (
        "Pods",
        [["a-step-1-attempt-1-x", "plan", "Succeeded", "kwok-node-0", "runner=0"]],
    )
    step_run = {
        "kind": "AgentRun",
        "metadata": {"name": "o-build", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": "Running"},
    }
    ((title, _, rows),) = children_tables("OrchestrationRun", Related(runs=[step_run]), now=NOW)
    assert (title, rows) == ("Step runs", [["AgentRun", "o-build", "Running", "10m"]])
    assert children_tables("Memory", Related()) == []


@pytest.mark.parametrize("code_name", ["PERMISSION_DENIED", "UNIMPLEMENTED", "UNAVAILABLE"])
def test_grpc_describe_without_related_shows_the_object_alone(code_name: str) -> None:
    """gRPC mode, like kube mode: a caller who may get the run but not list its Events/Jobs/Pods (or an
    older server without DescribeResource) still gets `describe` of the object; other errors still fail."""
    import grpc

    from jangar.ctl.backend import GrpcBackend

    code = getattr(grpc.StatusCode, code_name)

    class Stub:
        async def DescribeResource(self, request: Any, **_: Any) -> Any:
            raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="no")

    backend = object.__new__(GrpcBackend)
    backend.stub, backend.metadata, backend.timeout = Stub(), (), 5.0
    obj = {"kind": "AgentRun", "metadata": {"name": "a", "namespace": "ns"}}
    if code == grpc.StatusCode.UNAVAILABLE:
        with pytest.raises(CtlError, match="unavailable"):
            asyncio.run(backend.related(AR, obj))
    else:
        assert asyncio.run(backend.related(AR, obj)) is None
        text = describe_text(AR, obj, children=None, events=None)
        assert "Name:" in text and "not available" in text
