"""A finished AgentRun's artifacts (the runner's termination message) → Artifact objects, as pure functions.

The runner reports each provider `outputArtifacts` entry with `present`, `size` and `sha256`
(`jangar.runner`); the controller copies at most `JANGAR_ARTIFACTS_MAX_PER_RUN` of them into
`status.artifacts` and creates one Artifact per present entry, named `<run>-<artifact>`, labelled with the run
and controlled by it. An Artifact records *where* the content is (`spec.uri`), never a copy of it:

* a path under the run's Workspace mount (`/workspace/<workspace>/...`) → `pvc://<claim>/<path in the claim>`
  (the content stays on the Workspace's volume, for as long as the Workspace lives);
* else the entry's `url` (the agent put it there itself);
* else the path itself (it lived in the pod's filesystem, and is gone with the pod).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jangar.api.contract import ANNOTATION_ARTIFACT_NAME, LABEL_RUN, WORKSPACE_MOUNT_ROOT
from jangar.scheduler.naming import dns_label, label_value
from jangar.scheduler.ownership import owner_reference

__all__ = ["RunArtifacts", "artifact_uri", "run_artifacts"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = ("name", "path", "key", "url", "present", "size", "sha256")


@dataclass(frozen=True)
class RunArtifacts:
    #: `status.artifacts`: the reported entries, capped
    entries: list[dict[str, Any]] = field(default_factory=list)
    #: the Artifact manifests to create
    objects: list[dict[str, Any]] = field(default_factory=list)
    #: how many entries the runner reported (named ones), and whether some were left out
    reported: int = 0
    truncated: bool = False


def _workspace_ref(run: Mapping[str, Any]) -> str | None:
    ref = ((run.get("spec") or {}).get("workspaceRef") or {}).get("name")
    return str(ref) if isinstance(ref, str) and ref else None


def artifact_uri(entry: Mapping[str, Any], workspace: str | None) -> str | None:
    """Where an artifact's content is (see the module doc)."""
    path = entry.get("path")
    if isinstance(path, str) and path and workspace:
        root = f"{WORKSPACE_MOUNT_ROOT}/{workspace}/"
        if path.startswith(root) and path[len(root) :].strip("/"):
            return f"pvc://{workspace}/{path[len(root) :].lstrip('/')}"
    url = entry.get("url")
    if isinstance(url, str) and url:
        return url
    return path if isinstance(path, str) and path else None


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 2
    while candidate in taken:
        candidate = dns_label(name, str(i))
        i += 1
    taken.add(candidate)
    return candidate


def run_artifacts(
    run: Mapping[str, Any], reported: Sequence[Mapping[str, Any]], *, limit: int, ttl_days: int = 0
) -> RunArtifacts:
    """`status.artifacts` and the Artifact objects for `run`'s reported artifacts (at most `limit`)."""
    named = [e for e in reported if isinstance(e, Mapping) and isinstance(e.get("name"), str) and e["name"]]
    kept = [{k: e[k] for k in _ENTRY_KEYS if k in e} for e in named[:limit]]
    meta = run.get("metadata") or {}
    run_name, ns = str(meta.get("name") or ""), meta.get("namespace")
    owner = owner_reference(run)
    workspace = _workspace_ref(run)
    taken: set[str] = set()
    objects: list[dict[str, Any]] = []
    for entry in kept:
        if entry.get("present") is False:
            continue  # the agent did not write it: nothing to record
        spec: dict[str, Any] = {"runRef": {"name": run_name}}
        uri = artifact_uri(entry, workspace)
        if uri:
            spec["uri"] = uri
        for key in ("path", "key", "url"):
            if isinstance(entry.get(key), str) and entry[key]:
                spec[key] = entry[key]
        size = entry.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            spec["sizeBytes"] = size
        digest = entry.get("sha256")
        if isinstance(digest, str) and _HEX64.match(digest.removeprefix("sha256:")):
            spec["checksum"] = f"sha256:{digest.removeprefix('sha256:')}"
        if ttl_days > 0:
            spec["lifecycle"] = {"ttlDays": ttl_days}
        metadata: dict[str, Any] = {
            "name": _unique(dns_label(run_name, str(entry["name"])), taken),
            "namespace": ns,
            "labels": {LABEL_RUN: label_value(run_name)},
            "annotations": {ANNOTATION_ARTIFACT_NAME: str(entry["name"])},
        }
        if owner is not None:
            metadata["ownerReferences"] = [owner]
        objects.append(
            {
                "apiVersion": "artifacts.proompteng.ai/v1alpha1",
                "kind": "Artifact",
                "metadata": metadata,
                "spec": spec,
            }
        )
    return RunArtifacts(kept, objects, len(named), len(named) > limit)
