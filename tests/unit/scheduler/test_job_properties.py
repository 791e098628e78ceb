"""Structural properties of every Job the builder can produce: what the API server would otherwise reject."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jangar.scheduler import RunContext, StepRef, VcsRuntime, build_job_plan
from jangar.scheduler.contract import build_metadata
from jangar.settings import Settings
from jangar.validation import check_volumes
from jangar.validation.agentrun import reserved_volume_names
from tests.unit.scheduler.objects import agent, agent_run, implementation, provider

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SETTINGS = Settings.from_env(
    {"JANGAR_AGENT_RUNNER_IMAGE": "runner:1", "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "codex-auth"}
)

run_names = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,120}[a-z0-9])?", fullmatch=True)
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)
volume = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["emptyDir", "pvc", "secret"]),
        "name": st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
        "mountPath": st.from_regex(r"/[a-z]{1,8}(/[a-z]{1,8})?", fullmatch=True),
    }
)


@settings(max_examples=80, deadline=None)
@given(
    name=run_names,
    env_template=st.dictionaries(env_names, st.text(max_size=20), max_size=6),
    input_paths=st.lists(
        st.from_regex(r"/[a-z]{1,8}/[a-z]{1,8}\.txt", fullmatch=True), max_size=3, unique=True
    ),
    volumes=st.lists(volume, max_size=4),
    step=st.none() | st.tuples(st.integers(1, 20), st.integers(1, 10)),
    vcs_env=st.lists(env_names, max_size=4),
)
def test_every_plan_is_structurally_valid(
    name: str,
    env_template: dict[str, str],
    input_paths: list[str],
    volumes: list[dict[str, Any]],
    step: tuple[int, int] | None,
    vcs_env: list[str],
) -> None:
    run = agent_run(name, parameters={"stage": "x"}, workload={"volumes": volumes})
    if check_volumes(run["spec"]["workload"], reserved=reserved_volume_names(name)):
        return  # validation rejects these before the builder sees them
    prov = provider(
        envTemplate=env_template, inputFiles=[{"path": p, "content": "{{inputs.stage}}"} for p in input_paths]
    )
    ctx = RunContext(
        run=run,
        agent=agent(),
        provider=prov,
        implementation=implementation(),
        parameters={"stage": "x"},
        metadata=build_metadata({"stage": "x"}, implementation()),
        vcs=VcsRuntime(context={}, env=tuple({"name": n, "value": "v"} for n in vcs_env)),
        step=StepRef("s", *step, spec={"name": "s"}) if step else None,
    )
    plan = build_job_plan(ctx, SETTINGS)
    names = [plan.job_name] + [cm["metadata"]["name"] for cm in plan.configmaps]
    assert all(len(n) <= 63 and DNS_LABEL.match(n) for n in names), names
    assert len(set(names)) == len(names)
    pod = plan.job["spec"]["template"]["spec"]
    volume_names = [v["name"] for v in pod["volumes"]]
    assert len(set(volume_names)) == len(volume_names), volume_names
    assert all(len(v) <= 63 and DNS_LABEL.match(v) for v in volume_names), volume_names
    container = pod["containers"][0]
    env = [e["name"] for e in container["env"]]
    assert len(set(env)) == len(env)
    mounts = container["volumeMounts"]
    assert all(m["name"] in volume_names for m in mounts)
    paths = [m["mountPath"] for m in mounts]
    assert len(set(paths)) == len(paths), paths
    for label in plan.job["metadata"]["labels"].values():
        assert len(label) <= 63
