"""The Job and Pod cache transforms keep every field a reader uses (and drop the bulk nobody reads).

`READ_BY` is the list of reader → fields, found by grepping every reader of a cached Job or Pod
(`cache.get/list(JOBS|PODS, ...)`: agentrun/toolrun snapshot+decide, `jangar.scheduler.outcome`,
`termination`, `budget`, the admission snapshot, the Pod→run mapper in `setup.py`). Adding a reader of
another field means adding it here, and to `lean_cache` if it is dropped.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from jangar.api.contract import LABEL_RUN
from jangar.controllers.app_token_refresh import token_secret_in_use
from jangar.controllers.kinds import JOBS, PODS
from jangar.controllers.lean_cache import POD_JOB_INDEX, install_pod_index, lean_job, lean_pod, pods_of_job
from jangar.controllers.setup import _scope_cache
from jangar.runtime import CacheOptions
from jangar.runtime.testing import FakeCache
from jangar.scheduler.budget import pod_usage, workload_usage
from jangar.scheduler.outcome import classify_job, container_report
from jangar.settings import Settings

META_FIELDS = [
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "uid"),
    ("metadata", "resourceVersion"),
    ("metadata", "generation"),
    ("metadata", "creationTimestamp"),
    ("metadata", "deletionTimestamp"),
    ("metadata", "labels"),
    ("metadata", "annotations", "jangar.proompteng.ai/kept"),
    ("metadata", "ownerReferences"),
    ("metadata", "finalizers"),
]

READ_BY: dict[str, list[tuple[Any, ...]]] = {
    # agentrun/toolrun decide (TTL patch), scheduler.outcome (deadline), admission snapshot, mappers
    "job": [
        *META_FIELDS,
        ("spec", "ttlSecondsAfterFinished"),
        ("spec", "activeDeadlineSeconds"),
        ("spec", "backoffLimit"),
        ("spec", "suspend"),
        ("spec", "template", "spec", "containers", 0, "name"),
        ("spec", "template", "spec", "containers", 0, "image"),
        ("spec", "template", "spec", "containers", 0, "resources"),  # budget.workload_usage
        ("spec", "template", "spec", "initContainers", 0, "resources"),
        ("spec", "template", "spec", "overhead"),
        ("status",),  # outcome.classify_job: conditions, startTime, completionTime, succeeded, active, ...
    ],
    # outcome (container states, termination messages, waiting reasons, Unschedulable), budget.pod_usage
    "pod": [
        *META_FIELDS,
        ("spec", "nodeName"),
        ("spec", "restartPolicy"),
        ("spec", "overhead"),
        ("spec", "containers", 0, "name"),
        ("spec", "containers", 0, "resources"),
        ("spec", "initContainers", 0, "name"),
        ("spec", "initContainers", 0, "resources"),
        ("status",),
    ],
}

CONTAINER = {
    "name": "runner",
    "image": "ghcr.io/proompteng/jangar-runner:1",
    "command": ["/usr/local/bin/jangar-runner"],
    "args": ["exec", "x" * 200],
    "env": [{"name": f"VAR_{i}", "value": "v" * 50} for i in range(30)],
    "volumeMounts": [{"name": "spec", "mountPath": "/workspace/spec"}],
    "resources": {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "nvidia.com/gpu": "1"},
    },
    "securityContext": {"runAsNonRoot": True},
    "terminationMessagePolicy": "FallbackToLogsOnError",
}
INIT = {**CONTAINER, "name": "prepare", "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}
POD_SPEC = {
    "restartPolicy": "Never",
    "nodeName": "kwok-node-0",
    "overhead": {"cpu": "100m"},
    "containers": [CONTAINER],
    "initContainers": [INIT],
    "volumes": [{"name": "spec", "configMap": {"name": "r-spec"}}] * 5
    + [{"name": "vcs-token", "secret": {"secretName": "r-1-vcs-token", "items": [{"key": "token"}]}}],
    "tolerations": [{"key": "a", "operator": "Exists"}],
    "affinity": {"nodeAffinity": {"x": "y" * 100}},
}
META = {
    "name": "r-1",
    "namespace": "ns",
    "uid": "u-1",
    "resourceVersion": "42",
    "generation": 1,
    "creationTimestamp": "2026-12-01T10:00:00Z",
    "deletionTimestamp": "2026-12-01T11:00:00Z",
    "labels": {LABEL_RUN: "r-1", "batch.kubernetes.io/job-name": "r-1"},
    "annotations": {
        "jangar.proompteng.ai/kept": "yes",
        "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 500 + "}",
    },
    "ownerReferences": [{"kind": "AgentRun", "name": "r-1", "uid": "run-uid", "controller": True}],
    "finalizers": ["batch.kubernetes.io/job-tracking"],
    "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}],
}
TERMINATED = {"exitCode": 1, "reason": "Error", "message": '{"outputs": {"a": 1}}'}
POD = {
    "metadata": META,
    "spec": POD_SPEC,
    "status": {
        "phase": "Failed",
        "startTime": "2026-12-01T10:00:01Z",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "initContainerStatuses": [
            {
                "name": "prepare",
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "startedAt": "2026-12-01T10:00:01Z",
                        "finishedAt": "2026-12-01T10:00:02Z",
                    }
                },
            }
        ],
        "containerStatuses": [
            {
                "name": "runner",
                "state": {
                    "terminated": {
                        **TERMINATED,
                        "startedAt": "2026-12-01T10:00:02Z",
                        "finishedAt": "2026-12-01T10:01:02Z",
                    }
                },
            }
        ],
    },
}
JOB = {
    "metadata": META,
    "spec": {
        "ttlSecondsAfterFinished": 3600,
        "activeDeadlineSeconds": 600,
        "backoffLimit": 0,
        "suspend": False,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}},
        "template": {"metadata": {"labels": {LABEL_RUN: "r-1"}}, "spec": POD_SPEC},
    },
    "status": {
        "startTime": "2026-12-01T10:00:00Z",
        "failed": 1,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "lastTransitionTime": "2026-12-01T10:01:03Z",
            }
        ],
    },
}


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


@pytest.mark.parametrize(("kind", "transform", "sample"), [("job", lean_job, JOB), ("pod", lean_pod, POD)])
def test_every_field_a_reader_uses_survives(kind: str, transform: Any, sample: dict[str, Any]) -> None:
    lean = transform(copy.deepcopy(sample))
    for path in READ_BY[kind]:
        assert _at(lean, path) == _at(sample, path), path
    assert transform(copy.deepcopy(lean)) == lean  # idempotent (a relist re-applies it)


@pytest.mark.parametrize(("transform", "sample"), [(lean_job, JOB), (lean_pod, POD)])
def test_the_bulk_nobody_reads_is_gone(transform: Any, sample: dict[str, Any]) -> None:
    lean = transform(copy.deepcopy(sample))
    meta = lean["metadata"]
    assert "managedFields" not in meta
    assert "kubectl.kubernetes.io/last-applied-configuration" not in meta["annotations"]
    if transform is lean_job:  # no reader takes a Job's selector or template metadata from the cache
        assert "selector" not in lean["spec"] and set(lean["spec"]["template"]) == {"spec"}
    spec = lean["spec"]["template"]["spec"] if transform is lean_job else lean["spec"]
    assert set(spec) <= {"nodeName", "restartPolicy", "overhead", "containers", "initContainers", "volumes"}
    assert spec["volumes"] == [{"name": "vcs-token", "secret": {"secretName": "r-1-vcs-token"}}]
    assert set(spec["containers"][0]) == {"name", "image", "resources"}
    assert len(repr(lean)) < len(repr(sample)) / 2


def test_the_readers_decide_the_same_on_lean_objects() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    job, pod = lean_job(copy.deepcopy(JOB)), lean_pod(copy.deepcopy(POD))
    assert classify_job(job, [pod], now=now) == classify_job(JOB, [POD], now=now)
    assert container_report([pod], "runner") == container_report([POD], "runner")
    assert container_report([pod], "runner") is not None
    assert pod_usage(pod, now) == pod_usage(POD, now)
    start, end = datetime(2026, 12, 1, 10, tzinfo=UTC), datetime(2026, 12, 1, 11, tzinfo=UTC)
    template = job["spec"]["template"]["spec"]
    assert workload_usage(template, start, end) == workload_usage(POD_SPEC, start, end)
    assert workload_usage(template, start, end).cpu > 0


def test_setup_installs_the_transforms_on_the_job_and_pod_caches() -> None:
    mgr: Any = SimpleNamespace(cache=SimpleNamespace(options=CacheOptions()))
    _scope_cache(mgr, Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents"}))
    by = mgr.cache.options.by_resource
    assert by[JOBS].transform is lean_job and by[PODS].transform is lean_pod
    assert by[JOBS].label_selector == LABEL_RUN and by[JOBS].namespaces == ["agents"]


def _pod(name: str, job: str, ns: str = "agents") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": {"job-name": job}}}


def test_pods_of_a_job_come_from_the_index_and_match_the_label_scan() -> None:
    pods = [_pod("a-1", "a"), _pod("a-2", "a"), _pod("b-1", "b"), _pod("a-x", "a", ns="other")]
    indexed = FakeCache(PODS)
    install_pod_index(indexed)
    scanned = FakeCache(PODS)  # no index: the label scan
    for cache in (indexed, scanned):
        for p in pods:
            cache.add(PODS, p)
    names = {
        c: sorted(p["metadata"]["name"] for p in pods_of_job(c, "agents", "a")) for c in (indexed, scanned)
    }
    assert names[indexed] == names[scanned] == ["a-1", "a-2"]
    assert indexed.store(PODS).by_index(POD_JOB_INDEX, "b")[0]["metadata"]["name"] == "b-1"
    assert pods_of_job(indexed, "agents", "none") == []


def test_the_token_refresher_still_sees_a_lean_job_mount_the_token_secret() -> None:
    """`app_token_refresh.token_secret_in_use` reads the Job's Secret volumes from the cache: without them
    the refresher would never re-mint a long run's GitHub App token."""
    run = {"metadata": {"name": "r-1", "namespace": "ns"}, "status": {"phase": "Running"}}
    job = lean_job(copy.deepcopy(JOB))
    job["status"] = {"active": 1}
    del job["metadata"]["deletionTimestamp"]
    assert token_secret_in_use(run, [job]) == "r-1-vcs-token"


def test_values_repeated_across_jobs_are_one_object_after_the_transform() -> None:
    """The JSON decoder gives each decoded Job its own copy of every value; the transform interns those of
    the low-cardinality fields (condition texts, namespace, image, defaults, quantities) so 10,000 cached Jobs
    share one copy, and leaves the values equal (the readers' test above) and unique ones alone."""
    a, b = (lean_job(json.loads(json.dumps(JOB))) for _ in range(2))
    assert a == b
    for path in [
        ("metadata", "namespace"),
        ("status", "conditions", 0, "reason"),
        ("status", "conditions", 0, "type"),
        ("spec", "template", "spec", "restartPolicy"),
        ("spec", "template", "spec", "containers", 0, "image"),
        ("spec", "template", "spec", "containers", 0, "resources", "requests", "cpu"),
    ]:
        assert _at(a, path) is _at(b, path), path
    assert _at(a, ("metadata", "uid")) is not _at(b, ("metadata", "uid"))  # unique values are not interned
    pods = [lean_pod(json.loads(json.dumps(POD))) for _ in range(2)]
    assert pods[0]["status"]["conditions"][0]["type"] is pods[1]["status"]["conditions"][0]["type"]
    assert pods[0]["spec"]["containers"][0]["name"] is pods[1]["spec"]["containers"][0]["name"]
