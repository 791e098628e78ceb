"""agentctl's verbs (issue 13 item 4) on runs that really ran: the kwok cluster's Job controller, scheduler
and fake kubelet drive the Jobs and Pods, and jangar's manager runs exactly as `jangar serve` builds it,
with its controllers and its gRPC API (`tests.envtest.test_grpc._serve`). Every verb is run as a process,
in kube mode (the kubeconfig) and in gRPC mode (`--server`), one test each, and the other mode's
`describe` of the same run must print the same: `wait --for`, `describe` (the Job and Pods of each workflow step, the Events),
`logs` (kwok pods have no log: the message says so; `--step` picks the step's pod), `get -A`, `retry` of
a failed run, `cancel` of a running one, `delete` and `wait --for=delete`.

With AGENTCTL_TRANSCRIPT=<file> the commands and their output are appended there (docs/agentctl.md's
kwok examples come from it).
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from jangar.api.contract import LABEL_RETRY_OF
from jangar.controllers.kinds import AGENTRUNS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import FAIL_IMAGE, PULL_BACKOFF_IMAGE
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import apply_basics, run, wait_phase
from tests.envtest.test_grpc import TOKEN, _serve
from tests.support.commands import Completed, run_command

MODES = ("kube", "grpc")
_AGE = re.compile(r"\b\d+[smhd]\b|\(\d+[smhd] ago\)")


def words(text: str) -> list[list[str]]:
    """describe's output without what differs between two runs a few seconds apart: ages (and so the
    width of the columns they are in)."""
    return [_AGE.sub("<age>", line).split() for line in text.splitlines()]


def section(text: str, title: str) -> list[str]:
    """The indented lines under `title:` in describe's output."""
    lines = text.splitlines()
    start = lines.index(f"{title}:") + 1
    out = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


@pytest.mark.parametrize("mode", MODES)
async def test_agentctl_verbs_on_runs_driven_by_kwok(
    kwok_crds: LocalCluster, client: Client, kwok_namespace: str, mode: str
) -> None:
    ns = kwok_namespace
    # image pulls never finish for `stuck`: keep it Running (ImagePullBackOff) well past the test
    async with _serve(kwok_crds, ns, {"JANGAR_IMAGE_PULL_GRACE_SECONDS": "600"}, controllers=True) as served:
        prefixes = {
            "kube": ["--kubeconfig", str(kwok_crds.kubeconfig), "-n", ns],
            "grpc": ["--server", served.address, "-n", ns],
        }

        async def ctl(mode: str, *args: str) -> Completed:
            done = await run_command("jangar.agentctl", *prefixes[mode], *args, env={"AGENTCTL_TOKEN": TOKEN})
            if os.environ.get("AGENTCTL_TRANSCRIPT"):
                with open(os.environ["AGENTCTL_TRANSCRIPT"], "a") as out:
                    out.write(f"$ agentctl [{mode}, kwok] {' '.join(args)}\n{done.stdout}{done.stderr}")
                    out.write(f"[exit {done.returncode}]\n\n")
            return done

        await apply_basics(client, ns)
        steps = [{"name": "plan"}, {"name": "build"}]
        await client.create(
            AGENTRUNS, run(ns, "flow", runtime={"type": "workflow"}, workflow={"steps": steps})
        )
        failing = {
            "workload": {"image": FAIL_IMAGE},
            "runtime": {"type": "job", "config": {"backoffLimit": 0}},
        }
        await client.create(AGENTRUNS, run(ns, "boom", **failing))
        await wait_phase(client, ns, "boom", "Failed", timeout=90)

        # one mode per test (the 300 s test timeout); the other mode's describe is compared below
        # wait: the first mode really waits for the workflow (two Jobs, one after the other)
        done = await ctl(mode, "wait", "ar", "flow", "--for=condition=Succeeded", "--timeout=3m")
        assert (done.returncode, done.stdout.strip()) == (
            0,
            "agentrun.agents.proompteng.ai/flow condition met",
        ), done.stderr
        done = await ctl(mode, "wait", "ar", "flow", "--for=phase=Succeeded", "--timeout=10s")
        assert done.returncode == 0, done.stderr
        done = await ctl(mode, "wait", "ar", "boom", "--for=phase=Succeeded", "--timeout=2s")
        assert done.returncode == 1 and "timed out waiting for the phase Succeeded" in done.stderr

        # describe: each step's Job and Pod as the Job controller and kwok's kubelet left them
        done = await ctl(mode, "describe", "ar", "flow")
        assert done.returncode == 0, done.stderr
        described = done.stdout
        jobs = [line.split() for line in section(done.stdout, "Jobs")]
        assert jobs[0] == ["NAME", "STEP", "STATUS", "SUCCEEDED", "FAILED"]
        assert [j[:3] for j in jobs[1:]] == [
            ["flow-step-1-attempt-1", "plan", "Complete"],
            ["flow-step-2-attempt-1", "build", "Complete"],
        ]
        pods = [line.split() for line in section(done.stdout, "Pods")[1:]]
        assert sorted(p[1] for p in pods) == ["build", "plan"]
        for pod in pods:
            assert pod[2] == "Succeeded" and pod[3] != "<none>", pod  # scheduled on a kwok node
            assert pod[4].endswith("=0"), pod  # the container's exit code
        events = section(done.stdout, "Events")
        assert events and events[0].split()[:2] == ["TYPE", "REASON"], done.stdout
        reasons = {line.split()[1] for line in events[1:]}
        assert {"Running", "Succeeded"} <= reasons, events
        done = await ctl(mode, "describe", "ar", "boom")
        assert done.returncode == 0, done.stderr
        (boom_pod,) = section(done.stdout, "Pods")[1:]
        assert boom_pod.split()[1:] and boom_pod.split()[-1].endswith("=1"), boom_pod
        assert any(line.startswith("Warning") for line in section(done.stdout, "Events")), done.stdout

        # logs: kwok's kubelet serves no container logs; the message names the pod and says why
        done = await ctl(mode, "logs", "flow", "--step", "build")
        assert done.returncode == 1, (done.stdout, done.stderr)
        build_pod = next(p[0] for p in pods if p[1] == "build")
        assert build_pod in done.stderr and "log" in done.stderr, done.stderr
        done = await ctl(mode, "logs", "flow", "--step", "deploy")
        assert done.returncode == 1 and "no pods for step 'deploy' of AgentRun flow" in done.stderr

        # get -A: gRPC mode lists the namespaces the server manages (this one)
        done = await ctl(mode, "get", "ar", "-A")
        assert done.returncode == 0, done.stderr
        rows = [line.split() for line in done.stdout.splitlines()]
        assert rows[0][:3] == ["NAMESPACE", "NAME", "PHASE"]
        assert [ns, "flow", "Succeeded"] in [r[:3] for r in rows[1:]]

        # retry: a new run from the failed one's spec, which fails again the same way
        done = await ctl(mode, "retry", "boom", "--name", f"boom-{mode}")
        assert (done.returncode, done.stdout.strip()) == (
            0,
            f"agentrun.agents.proompteng.ai/boom-{mode} created (retry of boom)",
        ), done.stderr
        retried: dict[str, Any] = await client.get(AGENTRUNS, f"boom-{mode}", ns)
        assert retried["metadata"]["labels"][LABEL_RETRY_OF] == "boom"
        done = await ctl(mode, "wait", "ar", f"boom-{mode}", "--for=condition=Failed", "--timeout=2m")
        assert done.returncode == 0, done.stderr
        done = await ctl(mode, "retry", "flow")
        assert done.returncode == 1 and "is Succeeded: retry is for a run that failed" in done.stderr

        # cancel: a run kept Running by an image that never pulls
        stuck = f"stuck-{mode}"
        await client.create(AGENTRUNS, run(ns, stuck, workload={"image": PULL_BACKOFF_IMAGE}))
        done = await ctl(mode, "wait", "ar", stuck, "--for=phase=Running", "--timeout=2m")
        assert done.returncode == 0, done.stderr
        done = await ctl(mode, "cancel", "ar", stuck)
        assert (done.returncode, done.stdout.strip()) == (
            0,
            f"agentrun.agents.proompteng.ai/{stuck} cancel requested",
        ), done.stderr
        done = await ctl(mode, "wait", "ar", stuck, "--for=phase=Cancelled", "--timeout=2m")
        assert done.returncode == 0, done.stderr
        done = await ctl(mode, "cancel", "ar", stuck)
        assert done.stdout.strip() == f"agentrun.agents.proompteng.ai/{stuck} already Cancelled"

        # delete, and wait for it to be gone (the finalizer lets it go once its Job is cleaned up)
        done = await ctl(mode, "delete", "ar", f"boom-{mode}")
        assert (done.returncode, done.stdout.strip()) == (
            0,
            f'agentrun.agents.proompteng.ai "boom-{mode}" deleted',
        ), done.stderr
        done = await ctl(mode, "wait", "ar", f"boom-{mode}", "--for=delete", "--timeout=2m")
        assert done.returncode == 0, done.stderr

        # bad input: exit 2 in both modes, before anything is contacted
        for args, message in (
            (("get", "agentrn"), "did you mean 'agentrun'?"),
            (("get", "ar", "-l", "team in (a"), "bad label selector"),
            (("get", "ar", "-o", "xml"), "invalid choice: 'xml'"),
            (("wait", "ar", "flow", "--for=phase"), "bad --for"),
        ):
            done = await ctl(mode, *args)
            assert done.returncode == 2 and message in done.stderr, (args, done.stderr)

        # the other mode describes the finished workflow identically (ages aside)
        other = await ctl(next(m for m in MODES if m != mode), "describe", "ar", "flow")
        assert other.returncode == 0, other.stderr
        assert words(other.stdout) == words(described)
