"""kwok Stages for the local cluster: kwok's fast defaults plus a few test images with known outcomes.

kwok "runs" every Pod by moving its status through Stages. The defaults make every Job Pod succeed at once.
End-to-end tests also need failures, image-pull errors and Pods that take a while, so three reserved image
names select extra Stages (and are excluded from the defaults):

- `FAIL_IMAGE`: the container terminates with exit code 1 (reason `Error`), the Pod fails.
- `PULL_BACKOFF_IMAGE`: the Pod stays Pending with the container waiting in `ImagePullBackOff`.
- `SLOW_IMAGE`: like the default, but the Pod completes `SLOW_MILLISECONDS` after it starts running.
- `OUTPUTS_IMAGE`: like the default, and each container whose env has `TERMINATION_MESSAGE_ENV` terminates
  with that value as its termination message: what a real tool does with
  `echo "$KWOK_TERMINATION_MESSAGE" > /dev/termination-log`. The env value is rendered by the controller
  (a Tool's `env`, an AgentProvider's `envTemplate`), so a step's outputs on kwok come from its inputs.
- `FAIL_MESSAGE_IMAGE`: like `FAIL_IMAGE`, with the `TERMINATION_MESSAGE_ENV` value as the termination
  message: a runner that failed and said why (a usage limit, an expired token: provider health, issue 13).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

FAIL_IMAGE = "kwok.jangar.dev/fail:1"
PULL_BACKOFF_IMAGE = "kwok.jangar.dev/image-pull-backoff:1"
SLOW_IMAGE = "kwok.jangar.dev/slow:1"
SLOW_MILLISECONDS = 2000
OUTPUTS_IMAGE = "kwok.jangar.dev/outputs:1"
FAIL_MESSAGE_IMAGE = "kwok.jangar.dev/fail-with-message:1"
TERMINATION_MESSAGE_ENV = "KWOK_TERMINATION_MESSAGE"

_IMAGE = ".spec.containers.[].image"
_TERMINATED = """{{ $now := Now }}
{{ $root := . }}
containerStatuses:
{{ range $index, $item := .spec.containers }}
- image: {{ $item.image | Quote }}
  name: {{ $item.name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 1
      finishedAt: {{ $now | Quote }}
      reason: Error
      message: "kwok test image: exit 1"
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Failed
"""


def _terminated_with_message(exit_code: int, reason: str, phase: str) -> str:
    """A status template ending every container with `exit_code`/`reason`, its termination message taken
    from the container's `TERMINATION_MESSAGE_ENV` env value (kwok runs nothing, so the test says it)."""
    return (
        """{{ $now := Now }}
containerStatuses:
{{ range $index, $item := .spec.containers }}
- image: {{ $item.image | Quote }}
  name: {{ $item.name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: EXIT_CODE
      finishedAt: {{ $now | Quote }}
      reason: REASON
      startedAt: {{ $now | Quote }}
{{ range $item.env }}{{ if eq .name "ENV_NAME" }}      message: {{ .value | Quote }}
{{ end }}{{ end }}
{{ end }}
phase: PHASE
""".replace("EXIT_CODE", str(exit_code))
        .replace("REASON", reason)
        .replace("PHASE", phase)
        .replace("ENV_NAME", TERMINATION_MESSAGE_ENV)
    )


_COMPLETED_WITH_MESSAGE = _terminated_with_message(0, "Completed", "Succeeded")
_FAILED_WITH_MESSAGE = _terminated_with_message(1, "Error", "Failed")
_PULL_BACKOFF = """containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: ImagePullBackOff
      message: "Back-off pulling image {{ .image }}"
{{ end }}
phase: Pending
"""


def _expr(key: str, operator: str, values: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        out["values"] = values
    return out


def _pod_stage(
    name: str, exprs: list[dict[str, Any]], nxt: dict[str, Any], delay_ms: int = 0
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": exprs},
        "next": nxt,
    }
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms}
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def build_stages(default_stages: Path) -> list[dict[str, Any]]:
    """kwok's defaults, with the reserved images carved out of them, plus the reserved images' Stages."""
    docs = [d for d in yaml.safe_load_all(default_stages.read_text()) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    ready, complete = by_name["pod-ready"], by_name["pod-complete"]
    ready["spec"]["selector"]["matchExpressions"].append(_expr(_IMAGE, "NotIn", [PULL_BACKOFF_IMAGE]))
    slow = copy.deepcopy(complete)
    slow["metadata"]["name"] = "pod-complete-slow"
    slow["spec"]["selector"]["matchExpressions"].append(_expr(_IMAGE, "In", [SLOW_IMAGE]))
    slow["spec"]["delay"] = {"durationMilliseconds": SLOW_MILLISECONDS}
    complete["spec"]["selector"]["matchExpressions"].append(
        _expr(_IMAGE, "NotIn", [FAIL_IMAGE, SLOW_IMAGE, OUTPUTS_IMAGE, FAIL_MESSAGE_IMAGE])
    )
    running_job_pod = [
        _expr(".metadata.deletionTimestamp", "DoesNotExist"),
        _expr(".status.phase", "In", ["Running"]),
        _expr(".metadata.ownerReferences.[].kind", "In", ["Job"]),
    ]
    fail = _pod_stage(
        "pod-fail", [*running_job_pod, _expr(_IMAGE, "In", [FAIL_IMAGE])], {"statusTemplate": _TERMINATED}
    )
    pull = _pod_stage(
        "pod-image-pull-backoff",
        [
            _expr(".metadata.deletionTimestamp", "DoesNotExist"),
            _expr(".status.phase", "In", ["Pending"]),
            _expr(".spec.nodeName", "Exists"),
            _expr(_IMAGE, "In", [PULL_BACKOFF_IMAGE]),
            _expr(".status.containerStatuses.[].state.waiting.reason", "NotIn", ["ImagePullBackOff"]),
        ],
        {"statusTemplate": _PULL_BACKOFF},
    )
    outputs = _pod_stage(
        "pod-complete-with-message",
        [*running_job_pod, _expr(_IMAGE, "In", [OUTPUTS_IMAGE])],
        {"statusTemplate": _COMPLETED_WITH_MESSAGE},
    )
    fail_message = _pod_stage(
        "pod-fail-with-message",
        [*running_job_pod, _expr(_IMAGE, "In", [FAIL_MESSAGE_IMAGE])],
        {"statusTemplate": _FAILED_WITH_MESSAGE},
    )
    return [*docs, slow, fail, pull, outputs, fail_message]


def write_stages(default_stages: Path, out: Path) -> Path:
    out.write_text(yaml.safe_dump_all(build_stages(default_stages), sort_keys=False))
    return out
